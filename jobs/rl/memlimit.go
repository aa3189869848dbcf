package rl

import (
	"math"
	"runtime/debug"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// prepareMemory readies a training stage's memory once its micro-batch is
// chosen: the garbage of loading is returned to the OS, the loss head is
// made to keep a whole micro-batch's logits when keep (keep_logits:
// trainer.Model.HeadChunk), the activation arena is laid out for the
// largest micro-batch
// (micro sequences of maxT tokens, trainer.Model.Reserve), and the Go
// runtime's soft memory limit is set to the stage's estimate plus a
// margin (softLimit), so that garbage (a sampler's packed weights, a
// grown buffer) is collected before the process's resident set passes
// the estimate. The returned function restores the previous limit and
// the default head.
func prepareMemory(sc *jobs.StageCtx, pol *policy, maxT, micro, nseq int, keep bool) (restore func()) {
	m := pol.Model
	b := max(1, min(micro, nseq))
	freeGarbage() // what loading the policy (and a reference's log-probs) left
	var logits uint64
	if keep {
		m.HeadChunk = b * maxT
		logits = trainer.KeepLogitsMemory(m.Config, m.HeadChunk)
		sc.Log.Info().Str("logits", jobs.FormatBytes(float64(logits))).
			Msgf("%s: keeping the logits of %d tokens for the backward (keep_logits)", sc.Stage, m.HeadChunk)
	}
	m.Reserve(b, maxT)
	var lcfg *trainer.LoRAConfig
	if m.LoRA != nil {
		lcfg = &m.LoRA.Config
	}
	fixed, perSeq := trainer.TrainMemory(m.Config, lcfg, maxT, m.Recompute)
	limit := softLimit(fixed + m.BF16Memory() + uint64(b)*perSeq + logits)
	prev := debug.SetMemoryLimit(-1)
	if prev == math.MaxInt64 || prev > limit { // else the user's GOMEMLIMIT is tighter: keep it
		debug.SetMemoryLimit(limit)
		sc.Log.Debug().Str("soft_limit", jobs.FormatBytes(float64(limit))).Msgf("%s: Go soft memory limit", sc.Stage)
	}
	return func() {
		debug.SetMemoryLimit(prev)
		m.HeadChunk = 0 // a cached model's next stage runs the default head
	}
}

// softLimit is the soft memory limit of a stage whose buffers are
// estimated at est bytes: est + 1/4 + 512 MiB (the Go runtime, the rows,
// the tokenizer, the estimate's error). It is soft: a heap live past it
// makes the collector run often (Go caps that at half the CPU), so the
// margin is generous; the limit is there to bound garbage, not to size
// the stage.
func softLimit(est uint64) int64 {
	return int64(est + est/4 + 512<<20)
}
