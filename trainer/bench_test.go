package trainer

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/rljob/rljob/kernels"
)

// benchShape is one row of the training benchmark table (issue 3): tied
// embeddings, kv heads = heads, intermediate = 8/3·hidden rounded up to a
// multiple of 64.
type benchShape struct {
	name                     string
	layers, hidden, heads, V int
	B, T                     int
	kv, inter                int // 0: kv = heads, inter = 8/3·hidden
}

var benchShapes = []benchShape{
	{"a", 4, 128, 4, 64, 16, 64, 0, 0},
	{"b", 6, 256, 8, 512, 8, 128, 0, 0},
	{"c", 12, 768, 12, 50257, 4, 64, 0, 0},
}

// qwenShape is Qwen2.5-0.5B's shape (494M parameters, 2 KV heads,
// vocabulary 151,936) at 2 sequences of 256 tokens: 8 GB of parameters,
// gradients and AdamW moments (BenchmarkTrainStepQwen).
var qwenShape = benchShape{"qwen0.5b", 24, 896, 14, 151936, 2, 256, 2, 4864}

func (s benchShape) config() Config {
	inter := (8*s.hidden + 3*64 - 1) / (3 * 64) * 64
	if s.inter > 0 {
		inter = s.inter
	}
	kv := s.heads
	if s.kv > 0 {
		kv = s.kv
	}
	return Config{ModelType: "llama", HiddenSize: s.hidden, IntermediateSize: inter,
		NumLayers: s.layers, NumHeads: s.heads, NumKVHeads: kv, VocabSize: s.V,
		MaxPositionEmbeddings: 1024, RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true}
}

// BenchmarkTrainStep times one full SFT training step (forward,
// cross-entropy on every next token, backward, AdamW with clipping) and
// reports ms/step, tokens/s and GFLOP/s = 6·MatmulParams·tokens/time
// (the embedding lookup is not counted; the tied matrix counts once, as
// the lm_head; attention's own FLOPs are not counted, as in llm.c).
//
//	go test -tags duckdb_arrow -run '^$' -bench TrainStep -benchtime 5x ./trainer/
//
// The kernel set is the best the CPU has (RLJOB_KERNELS=avx2|go selects
// another: the same bytes, slower).
func BenchmarkTrainStep(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			benchTrain(b, s, "ce")
		})
	}
}

// BenchmarkTrainStepQwen is BenchmarkTrainStep's RL path on qwenShape.
// RLJOB_BENCH_MICRO=k accumulates k micro-batches of 2×256 tokens per
// AdamW step (as train does with a batch larger than its micro-batch):
// the optimizer's pass over 8 GB of parameters and moments is then
// shared by k·512 tokens.
//
// RLJOB_BENCH_KEEP_LOGITS=1 keeps a micro-batch's logits for the
// backward, as the train and sft stages do by default in full
// fine-tuning (keep_logits).
//
//	go test -tags duckdb_arrow -run '^$' -bench TrainStepQwen -benchtime 2x ./trainer/
//	RLJOB_BENCH_MICRO=8 go test -tags duckdb_arrow -run '^$' -bench TrainStepQwen -benchtime 1x ./trainer/
func BenchmarkTrainStepQwen(b *testing.B) { benchTrain(b, qwenShape, "logp") }

// BenchmarkTrainStepLogp is BenchmarkTrainStep through the RL path:
// log-probs and entropy at temperature 1, backward from dlogp and dH.
func BenchmarkTrainStepLogp(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			benchTrain(b, s, "logp")
		})
	}
}

// benchKeepLogits makes m's head keep the logits of a micro-batch of N
// tokens (HeadChunk = N, keep_logits) when RLJOB_BENCH_KEEP_LOGITS=1.
func benchKeepLogits(m *Model, N int) {
	if benchEnvInt("RLJOB_BENCH_KEEP_LOGITS", 0) == 1 {
		m.HeadChunk = N
	}
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// minorFaults is the process's minor page faults so far: each is a page
// the kernel zeroed (or mapped) because memory was touched fresh.
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

func benchTrain(b *testing.B, s benchShape, path string) {
	defer kernels.ReserveSchedulerP()() // as the train and sft stages run
	c := s.config()
	m, err := NewModel(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	o := DefaultAdamW(len(m.Params))
	sched := Schedule{Kind: "constant", LR: 1e-4}
	batch, targets, dlogp, dent := benchInputs(s, c)
	N := s.B * s.T
	micro := 1
	if s.name == qwenShape.name {
		micro = benchEnvInt("RLJOB_BENCH_MICRO", 1)
		benchKeepLogits(m, N)
	}
	step := func() {
		m.ZeroGrad()
		for range micro {
			benchFwdBwd(b, m, path, batch, targets, dlogp, dent)
		}
		if _, _, err := m.Step(o, sched); err != nil {
			b.Fatal(err)
		}
	}
	step() // warm-up: allocations, BLAS threads
	b.ResetTimer()
	start, cpu0, flt0 := time.Now(), cpuTime(), minorFaults()
	for range b.N {
		step()
	}
	sec := time.Since(start).Seconds() / float64(b.N)
	cpu := (cpuTime() - cpu0).Seconds() / float64(b.N)
	tokens := float64(N * micro)
	b.ReportMetric(sec*1e3, "ms/step")
	b.ReportMetric(tokens/sec, "tok/s")
	b.ReportMetric(6*float64(MatmulParams(c))*tokens/sec/1e9, "GFLOP/s")
	// cpu-ms/step (and GFLOP/cpu-s) use the process's user+system CPU time (all threads, BLAS's
	// too): on a shared, oversubscribed machine it shows the work done when
	// wall time mostly shows the wait.
	b.ReportMetric(cpu*1e3, "cpu-ms/step")
	b.ReportMetric(6*float64(MatmulParams(c))*tokens/cpu/1e9, "GFLOP/cpu-s")
	b.ReportMetric(float64(minorFaults()-flt0)/float64(b.N), "faults/step")
	b.ReportMetric(0, "ns/op")
	if b.N > 1 {
		b.Logf("%s: %s, %d params (%d in matmuls), backend %s", s.name, fmt.Sprintf("%+v", c), NumParams(c), MatmulParams(c), kernels.KernelSet())
	}
}

// benchInputs is a train benchmark's batch of s.B full sequences of s.T
// random tokens, its next-token targets and the loss gradients dlogp, dent
// of a mean log-prob loss with an entropy bonus.
func benchInputs(s benchShape, c Config) (batch Batch, targets []int32, dlogp, dent []float32) {
	rng := rand.New(rand.NewPCG(1, 2))
	lens := make([]int, s.B)
	for i := range lens {
		lens[i] = s.T
	}
	batch = testBatch(rng, c.VocabSize, lens, s.T)
	targets = NextTokenTargets(batch, nil)
	N := s.B * s.T
	dlogp, dent = make([]float32, N), make([]float32, N)
	for i := range dlogp {
		dlogp[i], dent[i] = -1/float32(N), 0.01/float32(N)
	}
	return batch, targets, dlogp, dent
}

// benchFwdBwd is one forward and backward of benchTrain's step, its
// gradients accumulated.
func benchFwdBwd(b *testing.B, m *Model, path string, batch Batch, targets []int32, dlogp, dent []float32) {
	if path == "ce" {
		if _, _, err := m.ForwardCE(batch, targets); err != nil {
			b.Fatal(err)
		}
		if err := m.BackwardCE(1); err != nil {
			b.Fatal(err)
		}
		return
	}
	if _, _, err := m.ForwardLogp(batch, targets, 1, true); err != nil {
		b.Fatal(err)
	}
	if err := m.BackwardLogp(dlogp, dent); err != nil {
		b.Fatal(err)
	}
}
