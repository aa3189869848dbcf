package rl

import (
	"math"
	"runtime/debug"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// prepareMemory readies a training stage's memory once its micro-batch is
// chosen: the garbage of loading is returned to the OS, the activation
// arena is laid out for the largest micro-batch
// (micro sequences of maxT tokens, trainer.Model.Reserve), and the Go
// runtime's soft memory limit is set to the stage's estimate plus a
// margin (softLimit), so that garbage (a sampler's packed weights, a
// grown buffer) is collected before the process's resident set passes
// the estimate. The returned function restores the previous limit.
func prepareMemory(sc *jobs.StageCtx, pol *policy, maxT, micro, nseq int, extra uint64) (restore func()) {
	m := pol.Model
	b := max(1, min(micro, nseq))
	freeGarbage() // what loading the policy (and a reference's log-probs) left
	m.Reserve(b, maxT)
	var lcfg *trainer.LoRAConfig
	if m.LoRA != nil {
		lcfg = &m.LoRA.Config
	}
	fixed, perSeq := trainer.TrainMemory(m.Config, lcfg, maxT, m.Recompute)
	limit := softLimit(fixed + extra + m.BF16Memory() + uint64(b)*perSeq)
	prev := debug.SetMemoryLimit(-1)
	if prev < math.MaxInt64 && prev <= limit {
		return func() {} // the user's GOMEMLIMIT is tighter: keep it
	}
	debug.SetMemoryLimit(limit)
	sc.Log.Debug().Str("soft_limit", jobs.FormatBytes(float64(limit))).Msgf("%s: Go soft memory limit", sc.Stage)
	return func() { debug.SetMemoryLimit(prev) }
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
