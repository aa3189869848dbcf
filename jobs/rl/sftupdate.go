package rl

import (
	"context"
	"math/rand/v2"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// sftUpdate is everything one sft call's AdamW updates depend on besides
// the parent's model and moments and the examples: the stage records it in
// a light checkpoint (trainer.LightRecord.Stage "sft") and replay runs it
// again, as trainUpdate is for train.
type sftUpdate struct {
	Schedule    trainer.Schedule `json:"schedule"`
	WeightDecay float64          `json:"weight_decay"`
	MaxGradNorm float64          `json:"max_grad_norm"`
	Epochs      int              `json:"epochs"`
	BatchSize   int              `json:"batch_size"`
	Micro       int              `json:"micro_batch_size"`
	Seed        int64            `json:"seed"` // the shuffles' seed (the seed argument or the run's), step and call
	Step        int64            `json:"step"`
	Call        int              `json:"call"`
	// FreshLoRA and DType as trainUpdate's.
	FreshLoRA *trainer.LoRAConfig `json:"fresh_lora,omitempty"`
	DType     string              `json:"dtype,omitempty"`
}

// sftResult is what the updates report for the metrics.
type sftResult struct {
	updates             int
	lr, gradNormSum     float64
	lossSum             float64 // last epoch: Σ CE over tokens
	lossTok, trainedTok int
}

// run makes the call's updates: per epoch, the examples shuffled from
// (seed, step, call, epoch) in batches of BatchSize; per batch, zero the
// gradients, accumulate ∂loss/∂θ over micro-batches (each weighted by its
// share of the batch's target tokens, so the sum is the gradient of the
// batch's token mean), clip, AdamW step. tick (may be nil) is called after
// each update.
func (u *sftUpdate) run(ctx context.Context, model *trainer.Model, opt *trainer.AdamW, data []sftExample, tick func()) (sftResult, error) {
	var res sftResult
	opt.WeightDecay, opt.MaxGradNorm = u.WeightDecay, u.MaxGradNorm
	bs := u.BatchSize
	for ep := range u.Epochs {
		rng := rand.New(rand.NewPCG(uint64(jobs.DeriveSeed(u.Seed, u.Step, int64(u.Call), int64(ep))), 0))
		order := rng.Perm(len(data))
		res.lossSum, res.lossTok = 0, 0
		for lo := 0; lo < len(order); lo += bs {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			batch := order[lo:min(lo+bs, len(order))]
			total := 0
			for _, k := range batch {
				total += len(data[k].tokens) - data[k].start
			}
			model.ZeroGrad()
			for mlo := 0; mlo < len(batch); mlo += u.Micro {
				mb := batch[mlo:min(mlo+u.Micro, len(batch))]
				b, start := padBatch(len(mb), func(i int) ([]int32, int) { return data[mb[i]].tokens, data[mb[i]].start })
				loss, count, err := model.ForwardCE(b, trainer.NextTokenTargets(b, start))
				if err != nil {
					return res, errf("sft: forward: %w", err)
				}
				if err := model.BackwardCE(float32(count) / float32(total)); err != nil {
					return res, errf("sft: backward: %w", err)
				}
				res.lossSum += float64(loss) * float64(count)
				res.lossTok += count
			}
			res.lr = u.Schedule.At(res.updates)
			table, params, grads := model.Trainable()
			gn, err := opt.Update(table, params, grads, res.lr)
			if err != nil {
				return res, errf("sft: update %d: %w", res.updates, err)
			}
			res.gradNormSum += gn
			res.trainedTok += total
			res.updates++
			if tick != nil {
				tick()
			}
		}
	}
	return res, nil
}

// sftRows are the examples as train_inputs.safetensors stores rows
// (tokens and the first target's index; no per-token columns).
func sftRows(data []sftExample) []trainRow {
	rows := make([]trainRow, len(data))
	for i, d := range data {
		rows[i] = trainRow{tokens: d.tokens, start: d.start}
	}
	return rows
}

// sftExamples are the examples of stored rows (sftRows' inverse).
func sftExamples(rows []trainRow) []sftExample {
	data := make([]sftExample, len(rows))
	for i, r := range rows {
		data[i] = sftExample{tokens: r.tokens, start: r.start}
	}
	return data
}
