package kernels

import (
	"fmt"
	"math/rand"
	"testing"
)

// BenchmarkBIGemm times the batch-invariant matmul (MatmulForwardBI on a
// packed weight; "bi+pack" packs the weight inside every call, as
// MatmulForward does) at the decode shapes of shape b (M = 1, 8, 32 rows)
// and the training shapes of shapes b (M = 8·128) and c (M = 4·64), with
// the kernel set in use (RLJOB_KERNELS selects another). GFLOP/s is wall
// time, GFLOP/cpu-s CPU time of the whole process (stable on a shared
// machine).
//
//	go test -tags duckdb_arrow -run '^$' -bench BIGemm ./kernels/
func BenchmarkBIGemm(b *testing.B) {
	type shape struct {
		name    string
		M, K, N int
	}
	var shapes []shape
	for _, M := range []int{1, 8, 32} {
		for _, kn := range [][2]int{{256, 256}, {256, 704}, {704, 256}, {256, 512}} {
			shapes = append(shapes, shape{"decode-b", M, kn[0], kn[1]})
		}
	}
	for _, kn := range [][2]int{{256, 256}, {256, 704}, {704, 256}, {256, 512}} {
		shapes = append(shapes, shape{"train-b", 1024, kn[0], kn[1]})
	}
	for _, kn := range [][2]int{{768, 768}, {768, 2048}, {2048, 768}, {768, 50257}} {
		shapes = append(shapes, shape{"train-c", 256, kn[0], kn[1]})
	}
	r := rand.New(rand.NewSource(1))
	b.Logf("kernel set: %s", KernelSet())
	for _, s := range shapes {
		inp, w, out := randSlice(r, s.M*s.K, 1), randSlice(r, s.N*s.K, 1), make([]float32, s.M*s.N)
		pw := PackWeight(nil, w, s.N, s.K)
		for _, impl := range []struct {
			name string
			f    func()
		}{
			{"bi", func() { MatmulForwardBI(out, inp, pw, nil, s.M) }},
			{"bi+pack", func() { MatmulForwardInvariant(out, inp, w, nil, s.M, s.K, s.N) }},
		} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", s.name, s.M, s.K, s.N, impl.name), func(b *testing.B) {
				impl.f()
				c0 := cpuSeconds()
				for b.Loop() {
					impl.f()
				}
				flop := float64(2*s.M*s.K*s.N) * float64(b.N)
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := cpuSeconds() - c0; cpu > 0 {
					b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}

// BenchmarkFMAPeak measures one core's float32 FMA peak with the best
// vector FMA the CPU has (12 independent chains of 16-lane AVX-512 FMAs,
// or of 8-lane AVX2 FMAs on a CPU without AVX-512): the ceiling the GEMM
// benchmarks' GFLOP/cpu-s are compared with.
//
//	go test -run '^$' -bench FMAPeak ./kernels/
func BenchmarkFMAPeak(b *testing.B) {
	const n = 1 << 22
	lanes := fmaPeak(n)
	if lanes == 0 {
		b.Skip("no AVX-512 or AVX2+FMA on this CPU (or a build without cgo)")
	}
	c0 := cpuSeconds()
	for b.Loop() {
		fmaPeak(n)
	}
	b.Logf("%d-lane FMAs", lanes)
	flop := float64(2*n*12*lanes) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuSeconds() - c0; cpu > 0 {
		b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
	}
}
