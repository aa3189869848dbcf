package kernels

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// BenchmarkGemmQwen times the fp32 products of one Qwen2.5-0.5B training
// step (2×256 = 512 tokens, hidden 896, q/o 896×896, k/v 896×128,
// gate/up 896×4864, down 4864×896) as the trainer calls them: "fwd" is
// MatmulForward (weight packed inside), "dinp" and "dW" MatmulBackward's
// two products (dinp += dout·W, dW += doutᵀ·inp), and "head" the LM head
// on a 16384-column slice of lm_head (forward on a weight packed once, as
// the trainer keeps it, and its backward). GFLOP/cpu-s is the work per
// CPU-second of the whole process; peak-frac divides it by one core's
// FMA peak (fmaPeak, measured once: AVX-512, or AVX2 on a CPU without).
//
//	go test -tags duckdb_arrow -run '^$' -bench GemmQwen ./kernels/
func BenchmarkGemmQwen(b *testing.B) {
	defer ReserveSchedulerP()() // as the train and sft stages run
	const tokens = 512
	peak := fmaPeakGFLOP()
	b.Logf("kernel set: %s, FMA peak %.1f GFLOP/cpu-s", KernelSet(), peak)
	r := rand.New(rand.NewSource(1))
	for _, s := range []struct {
		name  string
		C, OC int
	}{{"q", 896, 896}, {"kv", 896, 128}, {"gate", 896, 4864}, {"down", 4864, 896}, {"head", 896, 16384}} {
		inp, w := randSlice(r, tokens*s.C, 1), randSlice(r, s.OC*s.C, 0.05)
		dout, out := randSlice(r, tokens*s.OC, 1), make([]float32, tokens*s.OC)
		dinp, dw := make([]float32, tokens*s.C), make([]float32, s.OC*s.C)
		fwd := func() { MatmulForward(out, inp, w, nil, tokens, s.C, s.OC) }
		if s.name == "head" {
			pw := PackWeight(nil, w, s.OC, s.C)
			fwd = func() { MatmulForwardBI(out, inp, pw, nil, tokens) }
		}
		for _, p := range []struct {
			name string
			f    func()
		}{
			{"fwd", fwd},
			{"dinp", func() { MatmulBackward(dinp, nil, nil, dout, inp, w, tokens, s.C, s.OC) }},
			{"dW", func() { MatmulBackward(nil, dw, nil, dout, inp, w, tokens, s.C, s.OC) }},
		} {
			b.Run(fmt.Sprintf("%s/%s/%dx%d", p.name, s.name, s.C, s.OC), func(b *testing.B) {
				p.f()
				c0 := cpuSeconds()
				for b.Loop() {
					p.f()
				}
				cpu := cpuSeconds() - c0
				if cpu <= 0 {
					return
				}
				g := float64(2*tokens*s.C*s.OC) * float64(b.N) / cpu / 1e9
				b.ReportMetric(g, "GFLOP/cpu-s")
				if peak > 0 {
					b.ReportMetric(g/peak, "peak-frac")
				}
			})
		}
	}
}

var fmaPeakOnce = sync.OnceValue(func() float64 {
	const n = 1 << 22
	lanes := fmaPeak(n)
	best := 0.0
	for range 3 {
		c0 := cpuSeconds()
		fmaPeak(n)
		if cpu := cpuSeconds() - c0; cpu > 0 && lanes > 0 {
			best = max(best, float64(2*n*12*lanes)/cpu/1e9)
		}
	}
	return best
})

// fmaPeakGFLOP is one core's FMA peak in GFLOP per CPU-second, with
// AVX-512 or else AVX2 (the best of three runs; 0 with neither).
func fmaPeakGFLOP() float64 { return fmaPeakOnce() }

// BenchmarkGemmMicroKernel is the widest micro-kernel of the kernel set
// alone (AVX2: 6 rows × 16 columns; AVX-512: 12 × 32), rows packed or
// read in place, over K-deep operands that stay in cache: its share of the
// FMA peak (peak-frac) bounds what the whole product can reach; the
// difference from BenchmarkGemmQwen's is the driver's (blocking, packing,
// memory).
//
//	go test -tags duckdb_arrow -run '^$' -bench GemmMicroKernel ./kernels/
func BenchmarkGemmMicroKernel(b *testing.B) {
	peak := fmaPeakGFLOP()
	for _, inplace := range []bool{true, false} {
		for _, K := range []int{256, 896, 4864} {
			name := fmt.Sprintf("packed/K%d", K)
			if inplace {
				name = fmt.Sprintf("inplace/K%d", K)
			}
			b.Run(name, func(b *testing.B) {
				reps := max(1, (1<<22)/K)
				if microLoop(inplace, K, 1) == 0 {
					b.Skip("no C kernel set (RLJOB_KERNELS=go, or a build without cgo)")
				}
				fmas, c0 := 0, cpuSeconds()
				for b.Loop() {
					fmas += microLoop(inplace, K, reps)
				}
				if cpu := cpuSeconds() - c0; cpu > 0 && peak > 0 {
					b.ReportMetric(2*float64(fmas)/cpu/1e9, "GFLOP/cpu-s")
					b.ReportMetric(2*float64(fmas)/cpu/1e9/peak, "peak-frac")
				}
			})
		}
	}
}
