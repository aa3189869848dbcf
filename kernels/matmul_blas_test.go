//go:build openblas

package kernels

import (
	"math/rand"
	"runtime"
	"slices"
	"strconv"
	"testing"
)

func init() {
	matmulPaths = append(matmulPaths, matmulPath{"blas", matmulForwardBLAS, matmulBackwardBLAS})
}

// TestBLASMatchesGo compares OpenBLAS with the pure-Go kernel (and, through
// TestMatmulPaths, with the naive loop) on model-sized shapes. They sum in
// different orders (OpenBLAS uses FMA and k-blocking), hence matmulTol.
func TestBLASMatchesGo(t *testing.T) {
	if !BLAS() {
		t.Fatal("built with openblas but BLAS() is false")
	}
	t.Log(BLASName())
	r := rand.New(rand.NewSource(9))
	shapes := []struct{ B, C, OC int }{{64, 128, 384}, {sizes(32, 256), sizes(200, 768), sizes(300, 2048)}}
	for _, s := range shapes {
		inp, w, bias := randSlice(r, s.B*s.C, 1), randSlice(r, s.OC*s.C, 1), randSlice(r, s.OC, 1)
		ob, og := make([]float32, s.B*s.OC), make([]float32, s.B*s.OC)
		matmulForwardBLAS(ob, inp, w, bias, s.B, s.C, s.OC)
		matmulForwardGo(og, inp, w, bias, s.B, s.C, s.OC)
		atol, rtol := matmulTol(max(s.B, s.C, s.OC))
		assertClose(t, "out", ob, og, atol, rtol)
		dout := randSlice(r, s.B*s.OC, 1)
		dib, dwb, dbb := make([]float32, s.B*s.C), make([]float32, s.OC*s.C), make([]float32, s.OC)
		dig, dwg, dbg := make([]float32, s.B*s.C), make([]float32, s.OC*s.C), make([]float32, s.OC)
		matmulBackwardBLAS(dib, dwb, dbb, dout, inp, w, s.B, s.C, s.OC)
		matmulBackwardGo(dig, dwg, dbg, dout, inp, w, s.B, s.C, s.OC)
		assertClose(t, "dinp", dib, dig, atol, rtol)
		assertClose(t, "dweight", dwb, dwg, atol, rtol)
		assertClose(t, "dbias", dbb, dbg, 0, 0)
	}
}

// TestBLASDeterministic: same inputs → same bytes, repeated and at several
// GOMAXPROCS (fixed chunks, each a single-threaded sgemm). The repeats at
// GOMAXPROCS 4 and 8 (more goroutines than cores) also exercise concurrent
// calls into OpenBLAS: a race inside it would show up as differing bytes.
func TestBLASDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	B, C, OC := sizes(64, 256), 768, sizes(640, 2304)
	inp, w, dout := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, B*OC, 1)
	run := func() [][]float32 {
		out, di, dw := make([]float32, B*OC), make([]float32, B*C), make([]float32, OC*C)
		matmulForwardBLAS(out, inp, w, nil, B, C, OC)
		matmulBackwardBLAS(di, dw, nil, dout, inp, w, B, C, OC)
		return [][]float32{out, di, dw}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(1)
	ref := run()
	for _, procs := range []int{1, 2, 3, 4, 8} {
		runtime.GOMAXPROCS(procs)
		for rep := 0; rep < 2; rep++ {
			got := run()
			for i := range ref {
				if !slices.Equal(bits(got[i]), bits(ref[i])) {
					t.Errorf("GOMAXPROCS=%d repeat %d: output %d differs from GOMAXPROCS=1", procs, rep, i)
				}
			}
		}
	}
}

// TestBLASBatchInvariance logs whether a row's result depends on how many
// other rows are in the batch (it may: small-matrix kernels, edge kernels).
func TestBLASBatchInvariance(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	B, C, OC := 64, 256, 512
	inp, w := randSlice(r, B*C, 1), randSlice(r, OC*C, 1)
	full := make([]float32, B*OC)
	matmulForwardBLAS(full, inp, w, nil, B, C, OC)
	for _, sub := range []int{1, 5, 32} {
		part := make([]float32, sub*OC)
		matmulForwardBLAS(part, inp[:sub*C], w, nil, sub, C, OC)
		t.Logf("first %d of %d rows alone: bit-identical = %v", sub, B, slices.Equal(bits(part), bits(full[:sub*OC])))
	}
}

// BenchmarkSgemmPeak measures the OpenBLAS forward alone (cblas_sgemm in
// chunks on GOMAXPROCS goroutines) on a square product (2·n³ flops per call).
func BenchmarkSgemmPeak(b *testing.B) {
	for _, n := range []int{1024, 2048} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			a, bm, c := randSlice(r, n*n, 1), randSlice(r, n*n, 1), make([]float32, n*n)
			matmulForwardBLAS(c, a, bm, nil, n, n, n)
			b.ResetTimer()
			c0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				matmulForwardBLAS(c, a, bm, nil, n, n, n)
			}
			flops := 2 * float64(n) * float64(n) * float64(n) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			if cpu := cpuSeconds() - c0; cpu > 0 {
				b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
			}
		})
	}
}
