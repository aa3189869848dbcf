package rl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
	"github.com/rljob/rljob/trainer/loss"
)

// Light checkpoints (docs/checkpoints.md): a train call whose chain of light
// checkpoints since the last full state is shorter than full_state_every
// writes only trainer_state.json (with a trainer.LightRecord holding this
// trainUpdate) and train_inputs.safetensors; loading one loads its parent
// and replays the update with trainUpdate.run, the code the stage ran.

func init() { trainer.LightLoader = replayLight }

// lightStageSFT is trainer.LightRecord.Stage of an sft call's light
// checkpoint (train's is "").
const lightStageSFT = "sft"

// trainUpdate is everything one train call's AdamW updates depend on
// besides the parent's model and moments and the rows: the stage records
// it in a light checkpoint and replay runs it again.
type trainUpdate struct {
	Loss          loss.Config `json:"loss"`
	LR            float64     `json:"lr"`
	WeightDecay   float64     `json:"weight_decay"`
	MaxGradNorm   float64     `json:"max_grad_norm"`
	Epochs        int         `json:"epochs"`
	MinibatchSize int         `json:"minibatch_size"` // resolved: 1..rows
	Micro         int         `json:"micro_batch_size"`
	Temperature   float64     `json:"temperature"`
	Seed          int64       `json:"seed"` // the run's seed, step and call: minibatch shuffles, fresh adapters
	Step          int64       `json:"step"`
	Call          int         `json:"call"`
	// FreshLoRA is the config of adapters this call put on a plain policy
	// (A drawn from seed, step and call); nil when there are none or the
	// policy already had them.
	FreshLoRA *trainer.LoRAConfig `json:"fresh_lora,omitempty"`
	// DType is the call's dtype argument ("" when it named none: the
	// policy's own), applied to the parent's model before the update.
	DType string `json:"dtype,omitempty"`
}

// updateResult is what the updates report for the metrics.
type updateResult struct {
	total           loss.Stats
	firstMaxAbsLogR float64
	updates         int
	gradNormSum, lr float64
	tokens          int
}

// run makes the call's epochs × minibatches AdamW updates of model with
// opt on rows; tick (may be nil) is called after each update.
func (u *trainUpdate) run(ctx context.Context, model *trainer.Model, opt *trainer.AdamW, rows []trainRow, tick func()) (updateResult, error) {
	var res updateResult
	opt.WeightDecay, opt.MaxGradNorm = u.WeightDecay, u.MaxGradNorm
	sched := trainer.Schedule{Kind: "constant", LR: u.LR}
	acc := &gradAccumulator{model: model, rows: rows, cfg: u.Loss, temp: float32(u.Temperature),
		micro: u.Micro, withRef: rows[0].ref != nil, withTIS: rows[0].behav != nil}
	for ep := range u.Epochs {
		order := make([]int, len(rows))
		for i := range order {
			order[i] = i
		}
		if u.MinibatchSize < len(rows) {
			rng := rand.New(rand.NewPCG(uint64(jobs.DeriveSeed(u.Seed, u.Step, int64(u.Call), int64(ep))), 0))
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for lo := 0; lo < len(order); lo += u.MinibatchSize {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			model.ZeroGrad()
			st, err := acc.minibatch(order[lo:min(lo+u.MinibatchSize, len(order))])
			if err != nil {
				return res, err
			}
			if res.updates == 0 {
				res.firstMaxAbsLogR = st.MaxAbsLogR
			}
			res.lr = sched.At(res.updates)
			table, params, grads := model.Trainable()
			gn, err := opt.Update(table, params, grads, res.lr)
			if err != nil {
				return res, errf("train: update %d: %w", res.updates, err)
			}
			res.total.Add(st)
			res.gradNormSum += gn
			res.updates++
			if tick != nil {
				tick()
			}
		}
	}
	res.tokens = acc.tokens
	return res, nil
}

// lightDepth is the depth a checkpoint trained from pol would have if
// written light: one more than pol's when pol is light, else 1.
func lightDepth(pol *policy) int {
	if pol.State != nil && pol.State.Light != nil {
		return pol.State.Light.Depth + 1
	}
	return 1
}

// fullStateEvery is the stage's full_state_every: the argument, else
// defaultFullEvery (full fine-tuning) or defaultFullEveryLoRA.
func fullStateEvery(a jobs.Args, lora bool) int {
	switch {
	case a.Has("full_state_every"):
		return int(a.Int("full_state_every"))
	case lora:
		return defaultFullEveryLoRA
	}
	return defaultFullEvery
}

// The defaults of full_state_every: a full state costs 12 bytes a trained
// parameter (float32 weights, m and v), so every 4th call averages 3 B a
// parameter, under the 4 B (2 × bf16 weights) of docs/checkpoints.md's
// goal with room for the tokenizer and the light checkpoints; a rank-16
// adapter on all seven targets of a 0.5B Qwen2 is 1.8 % of the
// parameters, 106 MB with its moments, so every 16th call averages
// 0.7 % of the bf16 weights (goal ≤ 1 %). A crash then replays at most
// 3 (15) train updates, no rollouts.
const (
	defaultFullEvery     = 4
	defaultFullEveryLoRA = 16
)

// lightWrite reports whether the train call writes a light checkpoint:
// its depth stays under full_state_every and its moments came from the
// parent or were fresh (optSrc is pol.Dir or "").
func lightWrite(a jobs.Args, pol *policy, optSrc string) bool {
	return lightDepth(pol) < fullStateEvery(a, pol.Model.LoRA != nil) && (optSrc == "" || optSrc == pol.Dir)
}

// lightFiles returns the writer of a light checkpoint's files: st with its
// light record (parent relative to dest) and the rows; and st as a reader
// of the folder will see it (JSON numbers are float64 there), for the
// cache.
func lightFiles(st *trainer.TrainerState, dest string, pol *policy, optSrc string, u any, rows []trainRow) (func(put func(string, func(io.Writer) error) error) error, *trainer.TrainerState, error) {
	upd, err := json.Marshal(u)
	if err != nil {
		return nil, nil, err
	}
	parent, err := relFolder(dest, pol.Dir)
	if err != nil {
		return nil, nil, err
	}
	rec := &trainer.LightRecord{Parent: parent, Depth: lightDepth(pol), Optimizer: trainer.LightOptParent,
		LoRA: pol.Model.LoRA != nil, Update: upd}
	if _, ok := u.(*sftUpdate); ok {
		rec.Stage = lightStageSFT
	}
	if optSrc == "" {
		rec.Optimizer = trainer.LightOptFresh
	}
	s := *st
	s.Light = rec
	b, err := json.MarshalIndent(&s, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	b = append(b, '\n')
	var back trainer.TrainerState
	if err := json.Unmarshal(b, &back); err != nil {
		return nil, nil, err
	}
	return func(put func(string, func(io.Writer) error) error) error {
		if err := put(trainer.TrainerStateFile, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return err
		}
		return writeTrainInputs(put, rows)
	}, &back, nil
}

// relFolder is dir relative to dest (both made absolute), slash-separated.
func relFolder(dest, dir string) (string, error) {
	d, err := filepath.Abs(dest)
	if err != nil {
		return "", err
	}
	p, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// replayLight is trainer.LightLoader: it loads the parent of the light
// checkpoint dir (replaying it in turn when light), puts on the fresh
// adapters the call made, takes the parent's moments or fresh ones, and
// reruns the update on the stored rows. The result is the caller's.
func replayLight(dir string) (*trainer.Checkpoint, error) {
	parent, st, err := trainer.LightParent(dir)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return fmt.Errorf("rl: replay light checkpoint %s: %w", dir, err) }
	var u trainUpdate
	var su sftUpdate
	var dec any = &u
	fresh, dtype := &u.FreshLoRA, &u.DType
	switch st.Light.Stage {
	case "":
	case lightStageSFT:
		dec, fresh, dtype = &su, &su.FreshLoRA, &su.DType
	default:
		return nil, fail(fmt.Errorf("%s: light.stage %q is not one rljob replays (train, sft)", trainer.TrainerStateFile, st.Light.Stage))
	}
	if err := json.Unmarshal(st.Light.Update, dec); err != nil {
		return nil, fail(fmt.Errorf("%s: light.update: %w", trainer.TrainerStateFile, err))
	}
	rows, err := readTrainInputs(dir)
	if err != nil {
		return nil, fail(err)
	}
	seed, step, call := u.Seed, u.Step, u.Call
	if dec == &su {
		seed, step, call = su.Seed, su.Step, su.Call
	}
	pck, err := trainer.LoadCheckpoint(parent)
	if err != nil {
		return nil, fail(fmt.Errorf("parent %s: %w", parent, err))
	}
	model := pck.Model
	release := func() { model.Release(); pck.Opt.Release() }
	if *dtype != "" {
		if err := model.SetDType(*dtype); err != nil {
			release()
			return nil, fail(err)
		}
	}
	if *fresh != nil {
		if err := freshLoRA(model, **fresh, seed, step, call, parent); err != nil {
			release()
			return nil, fail(err)
		}
	}
	_, params, _ := model.Trainable()
	opt := pck.Opt
	switch {
	case st.Light.Optimizer == trainer.LightOptFresh:
		pck.Opt.Release()
		opt = trainer.DefaultAdamW(len(params))
	case opt == nil || len(opt.M) != len(params):
		release()
		return nil, fail(fmt.Errorf("it continues the moments of its parent %s, which has none for its %d trained parameters", parent, len(params)))
	}
	if dec == &su {
		_, err = su.run(context.Background(), model, opt, sftExamples(rows), nil)
	} else {
		_, err = u.run(context.Background(), model, opt, rows, nil)
	}
	if err != nil {
		model.Release()
		opt.Release()
		return nil, fail(err)
	}
	if opt.Step != st.Step {
		model.Release()
		opt.Release()
		return nil, fail(fmt.Errorf("replayed to optimizer step %d, %s says %d", opt.Step, trainer.TrainerStateFile, st.Step))
	}
	return &trainer.Checkpoint{Model: model, Opt: opt, State: st, Tokenizer: pck.Tokenizer, Dir: dir}, nil
}
