package rl

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/trainer"
)

// sftStage fine-tunes the policy on (prompt, completion) pairs.
type sftStage struct{}

func (sftStage) Spec() jobs.StageSpec {
	return jobs.StageSpec{
		Name: "sft",
		Doc: "Supervised fine-tuning: minimise the mean cross-entropy of the completion tokens given the prompt, " +
			"loss = Σ_{completion tokens + EOS} −log π(token | prefix) / (number of those tokens in the update); prompt tokens are " +
			"not trained on. Sequences are [BOS] + encode(prompt) + encode(completion) + [EOS], cut at max_len; a prompt that is a list of " +
			"chat messages is rendered with the policy's chat template together with the completion as the assistant's reply (a string, or a " +
			"list of assistant messages), and only what the reply adds to the prompt's rendering with add_generation_prompt is trained on " +
			"(the reply and the template's end of turn: an assistant-only loss; docs/chat.md). " +
			"AdamW (decoupled weight decay, global-norm clipping), linear warm-up then constant or cosine-to-zero learning rate; " +
			"examples shuffled every epoch from (seed, step, call, epoch); AdamW moments continue from the run's newest sft checkpoint " +
			"(a train in between keeps its own). Commits a checkpoint: the full state (with optimizer state) every full_state_every calls, " +
			"a light one in between that loading replays (docs/checkpoints.md), " +
			"and metrics sft/loss (mean over the last epoch), sft/tokens, sft/sequences, actor/lr, actor/grad_norm, timing_s/sft. " +
			"Empty data: the policy is committed unchanged for this step. Runs on shard 0 only.",
		Args: append([]jobs.ArgSpec{
			{Name: "data", Type: jobs.TypeTable, Required: true, Doc: "table or query with columns prompt and completion (strings, or a list of {role, content} messages and the assistant's reply)"},
			{Name: "policy", Type: jobs.TypeString, Default: "latest", Doc: policyDoc},
			dtypeArgSpec(""),
			{Name: "lr", Type: jobs.TypeFloat, Default: 1e-3, Doc: "peak learning rate"},
			{Name: "epochs", Type: jobs.TypeInt, Default: int64(1), Doc: "passes over data"},
			{Name: "batch_size", Type: jobs.TypeInt, Default: int64(16), Doc: "sequences per optimizer update"},
			{Name: "max_len", Type: jobs.TypeInt, Default: int64(0), Doc: "cut sequences to this many tokens; 0 = max_position_embeddings"},
			{Name: "warmup", Type: jobs.TypeInt, Default: int64(0), Doc: "updates of linear learning-rate warm-up"},
			{Name: "schedule", Type: jobs.TypeString, Default: "constant", Enum: []string{"constant", "cosine"}, Doc: "after warm-up: constant, or cosine decay to 0 at the last update"},
			{Name: "weight_decay", Type: jobs.TypeFloat, Default: 0.01, Doc: "AdamW decoupled weight decay (matrices only)"},
			{Name: "max_grad_norm", Type: jobs.TypeFloat, Default: 1.0, Doc: "clip the global gradient norm; 0 = off"},
			{Name: "seed", Type: jobs.TypeInt, DefaultDoc: "--seed", Doc: "seed of the shuffles"},
			{Name: "micro_batch_size", Type: jobs.TypeInt, DefaultDoc: "the most (up to 16) that fit the memory budget (rljob run --memory)",
				Doc: "sequences per forward/backward pass (memory; gradients of an update's micro-batches are summed, so it changes results only by float32 summation order)"},
			keepLogitsArg,
			{Name: "full_state_every", Type: jobs.TypeInt, DefaultDoc: "4 (full fine-tuning), 16 (LoRA)",
				Doc: "write the full training state (weights or adapters, AdamW moments, tokenizer) at every K-th call in a chain; the calls in between write a light checkpoint (trainer_state.json and the examples trained on, train_inputs.safetensors) that loading replays from its parent, bit for bit (docs/checkpoints.md); 1 = a full state every call"},
		}, loraArgSpecs()...),
		Outputs: func(jobs.Args) []string { return []string{arrowio.TableCheckpoints, arrowio.TableMetrics} },
		Check: func(a jobs.Args) (string, string) {
			switch {
			case !(a.Float("lr") >= 0):
				return "lr must be >= 0", ""
			case a.Int("epochs") < 1:
				return "epochs must be >= 1", ""
			case a.Int("batch_size") < 1:
				return "batch_size must be >= 1", ""
			case a.Int("max_len") < 0 || a.Int("warmup") < 0:
				return "max_len and warmup must be >= 0", ""
			case a.Float("weight_decay") < 0 || a.Float("max_grad_norm") < 0:
				return "weight_decay and max_grad_norm must be >= 0", ""
			case a.Has("micro_batch_size") && a.Int("micro_batch_size") < 1:
				return "micro_batch_size must be >= 1", ""
			case a.Has("full_state_every") && a.Int("full_state_every") < 1:
				return "full_state_every must be >= 1", ""
			}
			return checkLoRA(a)
		},
	}
}

// sftExample is one tokenised training sequence; tokens[start:] are the
// targets (completion + EOS).
type sftExample struct {
	tokens []int32
	start  int
}

// Run trains for epochs over the data in shuffled batches of batch_size:
// per update, zero the gradients, accumulate ∂loss/∂θ over micro-batches
// (each weighted by its share of the update's target tokens, so the sum is
// the gradient of the update's token mean), clip, AdamW step.
func (sftStage) Run(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) (jobs.Summary, error) {
	t0 := time.Now()
	defer kernels.ReserveSchedulerP()() // kernels/threads.go

	// Inputs.
	from, colsRef := source(a.String("data"))
	if err := sc.RequireColumns(ctx, "data", colsRef, "prompt", "completion"); err != nil {
		return jobs.Summary{}, err
	}
	pexpr, cexpr, isChat, cChat, err := sftColumns(ctx, sc, a, from)
	if err != nil {
		return jobs.Summary{}, err
	}
	freeGarbage()
	pol, err := loadPolicy(sc, a, "policy")
	if err != nil {
		return jobs.Summary{}, err
	}
	defer releaseModel(pol.Model)
	takeOver(pol)
	plain := pol.Model.LoRA == nil
	if err := applyLoRA(sc, a, pol); err != nil {
		return jobs.Summary{}, err
	}
	model, tok := pol.Model, pol.Tok
	eos := tok.EOS()
	if eos < 0 {
		return jobs.Summary{}, &jobs.DataError{Pos: a.Pos("policy"), Msg: "sft: the policy's tokenizer has no EOS token to end completions with", File: pol.Dir}
	}
	maxLen := model.Config.MaxPositionEmbeddings
	if l := int(a.Int("max_len")); l > 0 {
		maxLen = min(l, maxLen)
	}
	enc, err := sftEncoder(a, pol, isChat)
	if err != nil {
		return jobs.Summary{}, err
	}
	q := "SELECT " + pexpr + ", " + cexpr + " FROM " + from + " ORDER BY 1, 2"
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return jobs.Summary{}, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	var data []sftExample
	var truncated, dropped, row int
	unk := unknownChars{tok: tok}
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		p, ok1 := strAt(rec.Column(0), i)
		c, ok2 := strAt(rec.Column(1), i)
		if !ok1 || !ok2 {
			return &jobs.DataError{Pos: a.Pos("data"), Msg: "sft: data has a row with a NULL prompt or completion", Column: "completion", Hint: "filter NULLs out"}
		}
		toks, start, text, err := enc.sftTokens(p, c, cChat, eos)
		if err != nil {
			return &jobs.DataError{Pos: a.Pos("data"), Msg: fmt.Sprintf("sft: row %d", row), Column: "prompt", Err: err,
				Hint: "see what the template makes of it with: rljob chat render --tokenizer " + pol.Dir + " < messages.json"}
		}
		row++
		unk.check(text)
		if len(toks) > maxLen {
			toks = toks[:maxLen]
			truncated++
		}
		if start >= len(toks) || start == 0 {
			dropped++ // no completion token left to train on (or nothing to condition on)
			return nil
		}
		data = append(data, sftExample{tokens: toks, start: start})
		return nil
	})
	rr.Release()
	if err != nil {
		return jobs.Summary{}, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	unk.warn(sc, "sft: data")

	// Empty data: carry the policy forward.
	if len(data) == 0 {
		if err := copyCheckpoint(sc, a, pol.Dir); err != nil {
			return jobs.Summary{}, err
		}
		if _, err := commitMetrics(ctx, sc, map[string]float64{"sft/sequences": 0, "sft/tokens": 0, "timing_s/sft": time.Since(t0).Seconds()}, t0); err != nil {
			return jobs.Summary{}, err
		}
		return jobs.Summary{Table: arrowio.TableCheckpoints, Skipped: true,
			Note: fmt.Sprintf("sft: no trainable rows (%d dropped): policy committed unchanged", dropped)}, nil
	}

	// Optimizer: moments continue from the newest sft checkpoint, else fresh.
	opt, optSrc, err := stageOptimizer(sc, pol)
	if err != nil {
		return jobs.Summary{}, err
	}
	defer releaseOpt(opt)
	maxT := 0
	for _, d := range data {
		maxT = max(maxT, len(d.tokens))
	}
	microBatch, keep, err := chooseMicro(sc, a, pol, maxT, len(data), 0)
	if err != nil {
		return jobs.Summary{}, err
	}
	defer prepareMemory(sc, pol, maxT, microBatch, len(data), keep)()
	bs, epochs := int(a.Int("batch_size")), int(a.Int("epochs"))
	perEpoch := (len(data) + bs - 1) / bs
	sched := trainer.Schedule{Kind: a.String("schedule"), LR: a.Float("lr"), Warmup: int(a.Int("warmup")), Total: perEpoch * epochs}
	if sched.Kind == "cosine" && sched.Total <= sched.Warmup {
		sched.Total = sched.Warmup + 1
	}
	if err := sched.Validate(); err != nil {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.CallPos(), Msg: "sft: " + err.Error()}
	}
	seed := sc.Seed
	if a.Has("seed") {
		seed = a.Int("seed")
	}

	// Work.
	u := &sftUpdate{Schedule: sched, WeightDecay: a.Float("weight_decay"), MaxGradNorm: a.Float("max_grad_norm"),
		Epochs: epochs, BatchSize: bs, Micro: microBatch, Seed: seed, Step: sc.Step, Call: sc.Call}
	if plain && model.LoRA != nil {
		u.FreshLoRA = &model.LoRA.Config
	}
	if hasDType(a) {
		u.DType = a.String("dtype")
	}
	bar := sc.Bar("sft", int64(perEpoch*epochs))
	defer bar.Done()
	res, err := u.run(ctx, model, opt, data, func() { bar.Add(1) })
	if err != nil {
		return jobs.Summary{}, err
	}
	meanLoss := res.lossSum / float64(max(res.lossTok, 1))
	if math.IsNaN(meanLoss) || math.IsInf(meanLoss, 0) {
		return jobs.Summary{}, errf("sft: loss is %v", meanLoss)
	}

	// Outputs: checkpoint (full, or light: the update's record and examples), then metrics.
	if err := commitSFT(sc, a, pol, opt, optSrc, u, data); err != nil {
		return jobs.Summary{}, err
	}
	secs := time.Since(t0).Seconds()
	metrics := map[string]float64{
		"sft/loss":        meanLoss,
		"sft/tokens":      float64(res.trainedTok),
		"sft/sequences":   float64(len(data)),
		"actor/lr":        res.lr,
		"actor/grad_norm": res.gradNormSum / float64(res.updates),
		"timing_s/sft":    secs,
	}
	if _, err := commitMetrics(ctx, sc, metrics, t0); err != nil {
		return jobs.Summary{}, err
	}

	// Summary.
	note := fmt.Sprintf("sft: %d updates over %d sequences", res.updates, len(data))
	if truncated+dropped > 0 {
		note += fmt.Sprintf(" (%d cut at max_len %d, %d dropped)", truncated, maxLen, dropped)
	}
	return jobs.Summary{Table: arrowio.TableCheckpoints, Rows: 1, Note: note, Metrics: map[string]float64{
		"loss": meanLoss, "updates": float64(res.updates), "tokens_per_s": float64(res.trainedTok) / max(secs, 1e-9)}}, nil
}

// padBatch right-pads B sequences (seq(i) returns the tokens and the index
// of the first target token) into a trainer.Batch, and returns the starts.
func padBatch(B int, seq func(i int) ([]int32, int)) (trainer.Batch, []int) {
	T := 1
	for i := range B {
		t, _ := seq(i)
		T = max(T, len(t))
	}
	b := trainer.Batch{Tokens: make([]int32, B*T), Lens: make([]int, B), B: B, T: T}
	start := make([]int, B)
	for i := range B {
		t, s := seq(i)
		copy(b.Tokens[i*T:], t)
		b.Lens[i] = len(t)
		start[i] = s
	}
	return b, start
}

// commitSFT commits the call's checkpoint: the full state, or, while the
// chain of light checkpoints since the last one is shorter than the
// default full_state_every (docs/checkpoints.md), a light one holding u
// and the examples, which loading replays (sftUpdate.run).
func commitSFT(sc *jobs.StageCtx, a jobs.Args, pol *policy, opt *trainer.AdamW, optSrc string, u *sftUpdate, data []sftExample) error {
	ck := &trainer.Checkpoint{Model: pol.Model, Opt: opt, Tokenizer: pol.Tok, State: trainerState(sc, opt, u.Schedule, u.Seed, pol.Step)}
	if !a.Has("micro_batch_size") {
		ck.State.Extra[microKey] = u.Micro
	}
	if !lightWrite(a, pol, optSrc) {
		return commitCheckpoint(sc, a, ck, pol.Dir)
	}
	dest := sc.Lake.Path(checkpointUnit(sc.Run, sc.Step, sc.Call).Dir())
	write, state, err := lightFiles(ck.State, dest, pol, optSrc, u, sftRows(data))
	if err != nil {
		return fmt.Errorf("rl: sft: light checkpoint %s: %w", dest, err)
	}
	if err := commitFiles(sc, a, write, pol.Dir, append([]string{pol.Dir}, lightChain(pol.Dir)...)); err != nil {
		return err
	}
	ck.Dir, ck.State = dest, state
	cachePut(dest, ck, false) // when lent (an in-process shard), ck stays the stage's and is released
	return nil
}
