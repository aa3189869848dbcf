package trainer

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The device benchmarks' harness (cuda_bench_test.go runs it on a GPU):
// a model made on the selected backend, so that its buffers stay on the
// device (Backend.Keep), timed by wall clock with the backend's queue
// drained at the end of each step (a result read back).

// qwenGPUShape is Qwen2.5-0.5B's shape at 8 sequences of 1024 tokens,
// issue 18's train-step goal.
var qwenGPUShape = benchShape{"qwen0.5b", 24, 896, 14, 151936, 8, 1024, 2, 4864}

// cardPeak is a card's dense peak in TFLOP/s for dtype (bf16: tensor
// cores; fp32: the CUDA cores), from its name, or 0 when unknown. Public
// datasheet figures (SXM boards).
func cardPeak(name, dtype string) float64 {
	for _, c := range []struct {
		match      string
		bf16, fp32 float64
	}{{"H100 PCIe", 756, 51.2}, {"H100", 989.4, 66.9}, {"H200", 989.4, 66.9}, {"A100", 312, 19.5}} {
		if strings.Contains(name, c.match) {
			if dtype == DTypeBF16 {
				return c.bf16
			}
			return c.fp32
		}
	}
	return 0
}

// benchDeviceTrain times the RL train step (ForwardLogp with entropy,
// BackwardLogp, AdamW) of shape s in dtype on the selected backend and
// reports tokens/s, TFLOP/s (6·MatmulParams per token) and MFU against
// cardPeak when the backend's card is known. keep keeps the batch's
// logits for the backward (keep_logits: HeadChunk = B·T).
func benchDeviceTrain(b *testing.B, s benchShape, dtype string, keep bool) {
	c := s.config()
	m := benchDeviceModel(b, c, dtype)
	defer m.Release()
	if keep {
		m.HeadChunk = s.B * s.T
	}
	o := DefaultAdamW(len(m.Params))
	defer o.Release()
	batch, targets, dlogp, dent := benchInputs(s, c)
	N := s.B * s.T
	step := func() {
		m.ZeroGrad()
		benchFwdBwd(b, m, "logp", batch, targets, dlogp, dent)
		if _, _, err := m.Step(o, Schedule{Kind: "constant", LR: 1e-4}); err != nil { // reads the norm back: the queue drains
			b.Fatal(err)
		}
	}
	step() // warm-up: device copies, packs, staging buffers
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		step()
	}
	sec := time.Since(start).Seconds() / float64(b.N)
	tflops := 6 * float64(MatmulParams(c)) * float64(N) / sec / 1e12
	b.ReportMetric(sec*1e3, "ms/step")
	b.ReportMetric(float64(N)/sec, "tok/s")
	b.ReportMetric(tflops, "TFLOP/s")
	if peak := cardPeak(m.be.Name(), dtype); peak > 0 {
		b.ReportMetric(100*tflops/peak, "MFU%")
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("%s %s %dx%d on %s", s.name, dtype, s.B, s.T, m.be.Name())
}

// benchDeviceSample times Generate of batch sequences (16-token prompts,
// newTok new tokens each, temperature 1, no stop) of shape s on the
// selected backend and reports new tokens/s.
func benchDeviceSample(b *testing.B, s benchShape, dtype string, batch, newTok int) {
	c := s.config()
	m := benchDeviceModel(b, c, dtype)
	defer m.Release()
	prompts := smpPrompts(1, batch, c.VocabSize, 16)
	seeds := smpSeeds(batch, 1)
	opt := SampleOptions{Temperature: 1, MaxNewTokens: newTok}
	b.Run(fmt.Sprintf("%s/%s/batch%d", s.name, dtype, batch), func(b *testing.B) {
		for b.Loop() {
			if err := generateAll(m, prompts, seeds, opt); err != nil {
				b.Fatal(err)
			}
		}
		sec := b.Elapsed().Seconds()
		b.ReportMetric(float64(batch*newTok*b.N)/sec, "tokens/s")
		b.ReportMetric(sec*1e3/float64(b.N), "ms/batch")
		b.ReportMetric(0, "ns/op")
	})
}

// generateAll samples every prompt to opt.MaxNewTokens new tokens (the
// benchmark's prompts never stop early).
func generateAll(m *Model, prompts [][]int32, seeds []uint64, opt SampleOptions) error {
	out, err := m.Generate(prompts, seeds, opt)
	if err != nil {
		return err
	}
	for _, smp := range out {
		if len(smp.Tokens) != opt.MaxNewTokens {
			return fmt.Errorf("%d new tokens, want %d", len(smp.Tokens), opt.MaxNewTokens)
		}
	}
	return nil
}

// benchDeviceModel is a model of config c in dtype, made on the selected
// backend.
func benchDeviceModel(b testing.TB, c Config, dtype string) *Model {
	m, err := NewModel(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.SetDType(dtype); err != nil {
		b.Fatal(err)
	}
	return m
}
