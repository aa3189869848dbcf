package trainer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rljob/rljob/kernels"
)

// The bf16 benchmarks: fp32 against bf16 on Qwen2.5-0.5B's shape, A/B
// interleaved in one process (fp32, bf16, fp32, bf16, ...) on one model
// whose dtype is switched between steps, so both see the same load on a
// shared machine. RLJOB_BENCH_LAYERS sets the number of layers (default
// 4 of the 24, to keep a run short; the lm_head, 136 M of the 494 M
// parameters, is always there), RLJOB_BENCH_ROUNDS the rounds (default 3).
// Each reports the median per dtype and the ratio bf16/fp32 of
// GFLOP per CPU-second.
//
//	go test -tags duckdb_arrow -run '^$' -bench 'BF16(Train|Decode)Qwen' -benchtime 1x ./trainer/

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func bf16BenchShape() benchShape {
	s := qwenShape
	s.layers = benchEnvInt("RLJOB_BENCH_LAYERS", 4)
	s.name = fmt.Sprintf("qwen0.5b-%dl", s.layers)
	return s
}

// abRun times f under each dtype, interleaved, rounds times, and reports
// the median wall and CPU seconds of each dtype and the speed-ups.
func abRun(b *testing.B, flop, tokens float64, unit string, f func(dtype string)) {
	rounds := benchEnvInt("RLJOB_BENCH_ROUNDS", 3)
	dts := []string{DTypeFP32, DTypeBF16}
	wall, cpu := map[string][]float64{}, map[string][]float64{}
	for _, dt := range dts { // warm-up: allocations, packing buffers
		f(dt)
	}
	for range rounds {
		for _, dt := range dts {
			t0, c0 := time.Now(), cpuTime()
			f(dt)
			wall[dt] = append(wall[dt], time.Since(t0).Seconds())
			cpu[dt] = append(cpu[dt], (cpuTime() - c0).Seconds())
		}
	}
	med := func(x []float64) float64 { sort.Float64s(x); return x[len(x)/2] }
	for _, dt := range dts {
		w, c := med(wall[dt]), med(cpu[dt])
		b.ReportMetric(w*1e3, dt+"-ms/"+unit)
		b.ReportMetric(tokens/w, dt+"-tok/s")
		b.ReportMetric(flop/c/1e9, dt+"-GFLOP/cpu-s")
	}
	b.ReportMetric(med(cpu[DTypeFP32])/med(cpu[DTypeBF16]), "bf16-speedup-cpu")
	b.ReportMetric(med(wall[DTypeFP32])/med(wall[DTypeBF16]), "bf16-speedup-wall")
	b.ReportMetric(0, "ns/op")
	b.Logf("kernels %s, bf16 on %s, %d rounds", kernels.KernelSet(), kernels.BF16Dot(), rounds)
}

// BenchmarkBF16TrainQwen: one RL training step (ForwardLogp with entropy,
// BackwardLogp, AdamW) of 2 sequences of 256 tokens, fp32 against bf16.
// GFLOP = 6·MatmulParams·tokens, as BenchmarkTrainStep. RLJOB_BENCH_MICRO=k
// accumulates k such micro-batches per AdamW step, and
// RLJOB_BENCH_KEEP_LOGITS=1 keeps their logits, as BenchmarkTrainStepQwen.
func BenchmarkBF16TrainQwen(b *testing.B) {
	defer kernels.ReserveSchedulerP()() // as the train and sft stages run
	s := bf16BenchShape()
	c := s.config()
	m, err := NewModel(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	o := DefaultAdamW(len(m.Params))
	sched := Schedule{Kind: "constant", LR: 1e-5}
	lens := []int{s.T, s.T}
	batch := testBatch(rand.New(rand.NewPCG(1, 2)), c.VocabSize, lens, s.T)
	targets := NextTokenTargets(batch, nil)
	N := len(lens) * s.T
	dlogp, dent := make([]float32, N), make([]float32, N)
	for i := range dlogp {
		dlogp[i], dent[i] = -1/float32(N), 0.01/float32(N)
	}
	micro := benchEnvInt("RLJOB_BENCH_MICRO", 1)
	benchKeepLogits(m, N)
	b.Run(s.name, func(b *testing.B) {
		for b.Loop() {
			abRun(b, 6*float64(MatmulParams(c))*float64(N*micro), float64(N*micro), "step", func(dt string) {
				if err := m.SetDType(dt); err != nil {
					b.Fatal(err)
				}
				m.ZeroGrad()
				for range micro {
					if _, _, err := m.ForwardLogp(batch, targets, 1, true); err != nil {
						b.Fatal(err)
					}
					if err := m.BackwardLogp(dlogp, dent); err != nil {
						b.Fatal(err)
					}
				}
				if _, _, err := m.Step(o, sched); err != nil {
					b.Fatal(err)
				}
			})
		}
	})
}

// BenchmarkBF16DecodeQwen: Generate at batch 8 and 32 (16-token prompts,
// 16 new tokens, temperature 1, KV cache), fp32 against bf16, each on the
// model as the rollout stage loads it (LoadForSampling: weights packed
// once, at load); the prefill is in the time. tok/s counts new tokens; GFLOP = 2·MatmulParams·(prompt
// + new tokens).
func BenchmarkBF16DecodeQwen(b *testing.B) {
	const plen, newTok = 16, 16
	s := bf16BenchShape()
	c := s.config()
	m, err := NewModel(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := SaveCheckpoint(dir, &Checkpoint{Model: m}); err != nil {
		b.Fatal(err)
	}
	m.Release()
	models := map[string]*Model{}
	for _, dt := range []string{DTypeFP32, DTypeBF16} {
		ck, err := LoadForSampling(dir, dt)
		if err != nil {
			b.Fatal(err)
		}
		models[dt] = ck.Model
	}
	for _, batch := range []int{8, 32} {
		prompts := smpPrompts(1, batch, c.VocabSize, plen)
		seeds := smpSeeds(batch, 1)
		opt := SampleOptions{Temperature: 1, MaxNewTokens: newTok}
		b.Run(fmt.Sprintf("%s/batch%d", s.name, batch), func(b *testing.B) {
			for b.Loop() {
				abRun(b, 2*float64(MatmulParams(c))*float64(batch*(plen+newTok)), float64(batch*newTok), "batch", func(dt string) {
					if _, err := models[dt].Generate(prompts, seeds, opt); err != nil {
						b.Fatal(err)
					}
				})
			}
		})
	}
}
