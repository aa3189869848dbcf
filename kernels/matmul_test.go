package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// matmulPath is one implementation of the matmul pair; matmul_blas_test.go
// adds OpenBLAS when built with the openblas tag.
type matmulPath struct {
	name     string
	forward  func(out, inp, weight, bias []float32, B, C, OC int)
	backward func(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int)
}

var matmulPaths = []matmulPath{
	{"go", matmulForwardGo, matmulBackwardGo},
	{"dispatch", MatmulForward, MatmulBackward}, // what the trainer calls
}

var matmulShapes = []struct{ B, C, OC int }{
	{1, 1, 1},
	{1, 40, 19}, // one-row decode: kernel1x8 and the small-B backward
	{2, 9, 16},
	{3, 5, 7},
	{4, 8, 4},
	{17, 33, 65},
	{64, 64, 64},
	{129, 70, 131},
}

// matmulTol returns the tolerance for comparing matmuls with different
// summation orders over K terms of magnitude <= 1: a random-walk bound of a
// few float32 ulps per √K.
func matmulTol(K int) (atol, rtol float64) {
	return 4e-7 * float64(K) / math.Sqrt(float64(K)+1) * 4, 1e-5
}

// TestMatmulGoExact: the pure-Go kernel keeps the naive summation order, so
// it must match the naive loop bit for bit (with and without bias, forward
// and all three backward products, accumulating onto non-zero grads).
func TestMatmulGoExact(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, s := range matmulShapes {
		t.Run(fmt.Sprintf("%dx%dx%d", s.B, s.C, s.OC), func(t *testing.T) {
			checkMatmul(t, r, matmulPaths[0], s.B, s.C, s.OC, 0, 0)
		})
	}
}

// TestMatmulPaths compares every path with the naive loop at sizes on both
// sides of the BLAS threshold.
func TestMatmulPaths(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	shapes := append([]struct{ B, C, OC int }{}, matmulShapes...)
	shapes = append(shapes, struct{ B, C, OC int }{sizes(48, 96), sizes(96, 768), sizes(80, 1000)})
	for _, p := range matmulPaths {
		for _, s := range shapes {
			t.Run(fmt.Sprintf("%s/%dx%dx%d", p.name, s.B, s.C, s.OC), func(t *testing.T) {
				atol, rtol := matmulTol(max(s.C, s.OC, s.B))
				checkMatmul(t, r, p, s.B, s.C, s.OC, atol, rtol)
			})
		}
	}
}

func checkMatmul(t *testing.T, r *rand.Rand, p matmulPath, B, C, OC int, atol, rtol float64) {
	t.Helper()
	inp, w, bias := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)
	for _, withBias := range []bool{false, true} {
		bs := bias
		if !withBias {
			bs = nil
		}
		got, want := randSlice(r, B*OC, 1), make([]float32, B*OC) // out is written, not accumulated
		p.forward(got, inp, w, bs, B, C, OC)
		naiveMatmulForward(want, inp, w, bs, B, C, OC)
		assertClose(t, fmt.Sprintf("out(bias=%v)", withBias), got, want, atol, rtol)
	}
	dout := randSlice(r, B*OC, 1)
	di, dw, db := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)
	wi, ww, wb := clone(di), clone(dw), clone(db)
	p.backward(di, dw, db, dout, inp, w, B, C, OC)
	naiveMatmulBackward(wi, ww, wb, dout, inp, w, B, C, OC)
	assertClose(t, "dinp", di, wi, atol, rtol)
	assertClose(t, "dweight", dw, ww, atol, rtol)
	assertClose(t, "dbias", db, wb, atol, rtol)
	// nil grads are skipped
	p.backward(nil, dw, nil, dout, inp, w, B, C, OC)
	p.backward(di, nil, nil, dout, inp, w, B, C, OC)
}

// BenchmarkMatmul times forward + backward (dinp and dweight) of the matmuls
// of a 12-layer, 768-hidden model at B·T = 256 tokens and reports GFLOP/s
// = 6·B·C·OC / time (2 for the forward, 4 for the backward).
func BenchmarkMatmul(b *testing.B) {
	const BT = 256
	shapes := []struct {
		name  string
		C, OC int
	}{
		{"qkv_768x2304", 768, 2304},
		{"attn_proj_768x768", 768, 768},
		{"mlp_up_768x2048", 768, 2048},
		{"mlp_down_2048x768", 2048, 768},
		{"lm_head_768x50257", 768, 50257},
	}
	for _, p := range matmulPaths {
		if p.name == "dispatch" || p.name == "exact" {
			continue
		}
		for _, s := range shapes {
			b.Run(p.name+"/"+s.name, func(b *testing.B) {
				if p.name == "go" && s.OC > 10000 && testing.Short() {
					b.Skip("pure-Go lm_head is slow; skipped under -short")
				}
				r := rand.New(rand.NewSource(1))
				inp, w := randSlice(r, BT*s.C, 1), randSlice(r, s.OC*s.C, 0.05)
				out, dout := make([]float32, BT*s.OC), randSlice(r, BT*s.OC, 1)
				di, dw := make([]float32, BT*s.C), make([]float32, s.OC*s.C)
				p.forward(out, inp, w, nil, BT, s.C, s.OC) // warm up (threads, scratch)
				b.ResetTimer()
				c0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					p.forward(out, inp, w, nil, BT, s.C, s.OC)
					p.backward(di, dw, nil, dout, inp, w, BT, s.C, s.OC)
				}
				flops := 6 * float64(BT) * float64(s.C) * float64(s.OC) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// Per CPU-second received: stable on a shared machine;
				// times the core count it estimates the unshared figure.
				if cpu := cpuSeconds() - c0; cpu > 0 {
					b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}
