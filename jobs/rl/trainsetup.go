package rl

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// What train and sft share besides the policy: the LoRA arguments and the
// micro-batch chosen from the memory budget (docs/lora.md, docs/memory.md).

// keepLogitsArg is train's and sft's keep_logits (prepareMemory).
var keepLogitsArg = jobs.ArgSpec{Name: "keep_logits", Type: jobs.TypeBool,
	DefaultDoc: "true for full fine-tuning on the CPU when the memory budget holds them, else false",
	Doc:        "keep the forward's logits of a whole micro-batch (8·vocab bytes a token: 1.2 MB on Qwen2.5) so the backward does not compute them again; faster (one LM-head matmul less per micro-batch), the same bits (docs/memory.md)"}

// loraArgSpecs are the LoRA arguments of train and sft.
func loraArgSpecs() []jobs.ArgSpec {
	return []jobs.ArgSpec{
		{Name: "lora_rank", Type: jobs.TypeInt, Default: int64(0), Doc: "LoRA rank r: train low-rank adapters on the frozen policy instead of every weight; 0 = full fine-tuning (a policy that already has adapters continues them)"},
		{Name: "lora_alpha", Type: jobs.TypeFloat, DefaultDoc: "2 × lora_rank", Doc: "LoRA alpha: the adapters' output is scaled by alpha/r"},
		{Name: "lora_dropout", Type: jobs.TypeFloat, Default: 0.0, Doc: "dropout on the adapters' input; only 0 (dropout would break the bitwise rollout/train log-prob parity)"},
		{Name: "lora_targets", Type: jobs.TypeString, Default: "q,k,v,o,gate,up,down", Doc: "comma-separated modules that get adapters: " + strings.Join(trainer.LoRATargetNames, ", ") + " (or all)"},
	}
}

// loraConfig reads the LoRA arguments; ok is false when lora_rank is 0.
func loraConfig(a jobs.Args) (cfg trainer.LoRAConfig, ok bool, err error) {
	r := int(a.Int("lora_rank"))
	if r == 0 && !a.Has("lora_alpha") && !a.Given("lora_targets") && a.Float("lora_dropout") == 0 {
		return cfg, false, nil
	}
	targets, err := trainer.ParseLoRATargets(a.String("lora_targets"))
	if err != nil {
		return cfg, false, err
	}
	alpha := float64(2 * r)
	if a.Has("lora_alpha") {
		alpha = a.Float("lora_alpha")
	}
	cfg = trainer.LoRAConfig{Rank: r, Alpha: alpha, Dropout: a.Float("lora_dropout"), Targets: targets}
	return cfg, true, cfg.Validate()
}

// checkLoRA is the Check of the LoRA arguments (exit 2 before the run).
func checkLoRA(a jobs.Args) (string, string) {
	if _, _, err := loraConfig(a); err != nil {
		return strings.TrimPrefix(err.Error(), "trainer: "), "lora_rank >= 1 (e.g. 16), lora_alpha > 0, lora_dropout 0, lora_targets among " + strings.Join(trainer.LoRATargetNames, ",")
	}
	return "", ""
}

// applyLoRA puts the call's adapters on the policy: fresh ones (A random
// from the call's seed, B = 0) on a plain policy, or the policy's own
// when it already has adapters, which must then have the arguments' shape.
func applyLoRA(sc *jobs.StageCtx, a jobs.Args, pol *policy) error {
	cfg, ok, err := policyLoRA(sc, a, pol)
	m := pol.Model
	if err != nil || !ok || m.LoRA != nil {
		return err
	}
	fp, err := trainer.BaseFingerprint(pol.Dir)
	if err != nil {
		return &jobs.DataError{Pos: a.Pos("policy"), Msg: fmt.Sprintf("%s: fingerprint of the LoRA base %s", sc.Stage, pol.Dir), File: pol.Dir, Err: err}
	}
	_, err = trainer.NewLoRA(m, cfg, uint64(jobs.DeriveSeed(sc.Seed, sc.Step, int64(sc.Call), 0)), pol.Dir, fp)
	return err
}

// policyLoRA reads the LoRA arguments (ok: lora_rank > 0) and checks
// them against the adapters the policy already has, without changing it.
func policyLoRA(sc *jobs.StageCtx, a jobs.Args, pol *policy) (cfg trainer.LoRAConfig, ok bool, err error) {
	cfg, ok, err = loraConfig(a)
	if err != nil {
		return cfg, ok, &jobs.UsageError{Pos: a.CallPos(), Msg: sc.Stage + ": " + err.Error()}
	}
	if m := pol.Model; m.LoRA != nil && ok && !cfg.Equal(m.LoRA.Config) {
		return cfg, ok, &jobs.UsageError{Pos: a.Pos("lora_rank"), Msg: fmt.Sprintf("%s: policy %s has LoRA adapters r=%d alpha=%g targets %s, the arguments ask for r=%d alpha=%g targets %s",
			sc.Stage, pol.Dir, m.LoRA.Config.Rank, m.LoRA.Config.Alpha, strings.Join(m.LoRA.Config.Targets, ","), cfg.Rank, cfg.Alpha, strings.Join(cfg.Targets, ",")),
			Hint: "drop the lora_* arguments to continue the adapters, or start from a plain policy"}
	}
	return cfg, ok, nil
}

// freshLoRA puts on m the adapters applyLoRA put on it in the call (seed,
// step, call) of the run whose policy was base: replaying a light
// checkpoint recreates them so.
func freshLoRA(m *trainer.Model, cfg trainer.LoRAConfig, seed, step int64, call int, base string) error {
	fp, err := trainer.BaseFingerprint(base)
	if err != nil {
		return fmt.Errorf("fingerprint of the LoRA base %s: %w", base, err)
	}
	_, err = trainer.NewLoRA(m, cfg, uint64(jobs.DeriveSeed(seed, step, int64(call), 0)), base, fp)
	return err
}

// chooseMicro returns the sequences per forward/backward pass: the
// argument micro_batch_size when the job sets it, else the one the
// policy's checkpoint recorded (the previous call of this stage: the
// micro-batch changes float32 summation order, so a run keeps its first
// choice and a resumed run gives the bytes of an uninterrupted one) when
// it still fits, else the largest of 1..maxMicro sequences (at most nseq,
// and at most autoMicroTokens tokens of maxT unless that is one sequence)
// whose estimate fits jobs.TrainBudget. A
// model that cannot fit even one sequence of maxT tokens, or a set
// micro-batch that does not fit, is refused before any work, naming the
// estimate and the budget. extra is memory held besides the policy (a
// reference model). It also returns whether the head keeps a
// micro-batch's logits (keepLogitsAuto when keep_logits is unset);
// keep_logits := true counts them in the estimate
// (trainer.KeepLogitsMemory).
func chooseMicro(sc *jobs.StageCtx, a jobs.Args, pol *policy, maxT, nseq int, extra uint64) (micro int, keep bool, err error) {
	set := a.Has("keep_logits")
	mb := newMicroBudget(pol, maxT, nseq, extra)
	mb.forced = set && a.Bool("keep_logits")
	if micro, err = mb.choose(sc, a, pol); err != nil || set {
		return micro, mb.forced, err
	}
	return micro, keepLogitsAuto(sc, pol, mb, micro), nil
}

// keepLogitsAuto is keep_logits left unset: true for full fine-tuning on
// the CPU when the micro-batch's kept logits fit the budget beside what
// chooseMicro chose (no per-layer recomputation), so that the choice never
// changes the micro-batch, and with it no bit. LoRA keeps its smaller
// footprint (about 1.1 GiB more on Qwen2.5-0.5B would break its 4 GB), and
// a GPU's memory is not the budget's.
func keepLogitsAuto(sc *jobs.StageCtx, pol *policy, mb *microBudget, micro int) bool {
	if pol.Model.LoRA != nil || jobs.Device() != "cpu" {
		return false
	}
	if pol.Model.Recompute || !mb.fitsWith(micro, mb.perSeq, mb.logits(micro)) {
		sc.Log.Info().Str("logits", jobs.FormatBytes(float64(mb.logits(micro)))).
			Msgf("%s: not keeping the logits for the backward: the memory budget %s cannot hold them (keep_logits)", sc.Stage, jobs.FormatBytes(float64(mb.budget)))
		return false
	}
	return true
}

// microBudget is chooseMicro's arithmetic: the stage's fixed memory,
// its activations per sequence (perSeq; rcSeq under per-layer
// recomputation) and the memory budget (0: none); forced
// (keep_logits := true) counts the kept logits in every estimate.
type microBudget struct {
	fixed, perSeq, rcSeq, budget uint64
	maxT, nseq                   int
	cfg                          trainer.Config
	forced                       bool
}

func newMicroBudget(pol *policy, maxT, nseq int, extra uint64) *microBudget {
	m := pol.Model
	var lcfg *trainer.LoRAConfig
	if m.LoRA != nil {
		lcfg = &m.LoRA.Config
	}
	mb := &microBudget{maxT: maxT, nseq: max(nseq, 1), budget: jobs.TrainBudget(), cfg: m.Config}
	mb.fixed, mb.perSeq = trainer.TrainMemory(m.Config, lcfg, maxT, false)
	_, mb.rcSeq = trainer.TrainMemory(m.Config, lcfg, maxT, true)
	mb.fixed += extra + m.BF16Memory()
	return mb
}

// logits is what keeping the logits of b sequences holds.
func (mb *microBudget) logits(b int) uint64 {
	return trainer.KeepLogitsMemory(mb.cfg, min(b, mb.nseq)*mb.maxT)
}

// counted is the kept logits of b sequences in the estimate: forced's.
func (mb *microBudget) counted(b int) uint64 {
	if !mb.forced {
		return 0
	}
	return mb.logits(b)
}

// fitsWith reports whether b sequences fit the budget at per bytes of
// activations each, plus more.
func (mb *microBudget) fitsWith(b int, per, more uint64) bool {
	return mb.budget == 0 || mb.fixed+uint64(min(b, mb.nseq))*per+more <= mb.budget
}

func (mb *microBudget) fits(b int, per uint64) bool { return mb.fitsWith(b, per, mb.counted(b)) }

// choose is chooseMicro's micro-batch (see there).
func (mb *microBudget) choose(sc *jobs.StageCtx, a jobs.Args, pol *policy) (int, error) {
	m := pol.Model
	// fit returns b when it fits as it is, or under per-layer activation
	// recomputation (the same gradient bits, one more forward), else 0.
	fit := func(b int) int {
		switch {
		case mb.fits(b, mb.perSeq):
			return b
		case mb.fits(b, mb.rcSeq):
			m.Recompute = true
			sc.Log.Info().Str("activations", jobs.FormatBytes(float64(mb.rcSeq))+" per sequence").
				Msgf("%s: recomputing each layer's activations in the backward to fit the memory budget %s", sc.Stage, jobs.FormatBytes(float64(mb.budget)))
			return b
		}
		return 0
	}
	if a.Has("micro_batch_size") {
		b := int(a.Int("micro_batch_size"))
		if fit(b) == 0 {
			return 0, mb.refuse(sc, min(b, mb.nseq), a.Pos("micro_batch_size"),
				"lower micro_batch_size (or leave it out: it is then chosen from the budget), use LoRA (lora_rank := 16), or raise rljob run --memory")
		}
		return b, nil
	}
	if prev := recordedMicro(sc, pol); prev > 0 && fit(prev) > 0 {
		return prev, nil
	}
	b := min(maxMicro, mb.nseq, max(1, autoMicroTokens/max(mb.maxT, 1)))
	for b > 1 && !mb.fits(b, mb.perSeq) {
		b--
	}
	if fit(b) == 0 {
		return 0, mb.refuse(sc, 1, a.CallPos(), "use LoRA (lora_rank := 16), shorter sequences, or raise rljob run --memory (default: 3/4 of the available memory)")
	}
	return b, nil
}

// refuse is the usage error of b sequences that do not fit.
func (mb *microBudget) refuse(sc *jobs.StageCtx, b int, pos jobs.Pos, hint string) error {
	kept := ""
	if c := mb.counted(b); c > 0 {
		kept = " + the kept logits " + jobs.FormatBytes(float64(c))
		hint = "drop keep_logits, or " + hint
	}
	return &jobs.UsageError{Pos: pos,
		Msg: fmt.Sprintf("%s: %d sequence(s) of %d tokens need about %s (weights, gradients and moments %s + activations %s per sequence, %s with per-layer recomputation%s), more than the memory budget %s",
			sc.Stage, b, mb.maxT, jobs.FormatBytes(float64(mb.fixed+uint64(b)*mb.rcSeq+mb.counted(b))), jobs.FormatBytes(float64(mb.fixed)), jobs.FormatBytes(float64(mb.perSeq)),
			jobs.FormatBytes(float64(mb.rcSeq)), kept, jobs.FormatBytes(float64(mb.budget))),
		Hint: hint}
}

// maxMicro is the most sequences of one forward/backward pass when the
// budget allows, and autoMicroTokens the most tokens: a CPU matmul runs at
// full speed from a few hundred rows on, so larger micro-batches only cost
// memory (about 2 MB a token on a 0.5B model).
const (
	maxMicro        = 16
	autoMicroTokens = 1024
)

// microKey is the trainer_state extra that records a stage's micro-batch.
const microKey = "micro_batch_size"

// recordedMicro is the micro-batch the policy's checkpoint recorded when
// this stage wrote it, else 0.
func recordedMicro(sc *jobs.StageCtx, pol *policy) int {
	if pol.State == nil || pol.Stage != sc.Stage {
		return 0
	}
	v, _ := pol.State.Extra[microKey].(float64)
	return int(v)
}

// freeGarbage collects what earlier stages left (a sampler's packed
// weights, its KV cache) and returns it to the OS before a training stage
// allocates gigabytes, so that the process's peak is the training's and
// not the sum of the two (a GC of a heap of flat float32 buffers takes
// milliseconds).
func freeGarbage() { debug.FreeOSMemory() }
