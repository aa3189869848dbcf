package kernels

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
)

var matmulShapes = []struct{ B, C, OC int }{
	{1, 1, 1},
	{1, 40, 19}, // one-row decode
	{2, 9, 16},
	{3, 5, 7},
	{4, 8, 4},
	{17, 33, 65},
	{64, 64, 64},
	{129, 70, 131}, // past a row block and with panel tails
}

// useSet selects kernel set level for the test and restores the best one
// when it ends.
func useSet(t testing.TB, level int) {
	t.Helper()
	if err := UseKernelSet(biLevelName[level]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = UseKernelSet(biLevelName[biDetectedLevel]) })
}

// TestMatmulSetsBitIdentical: on every kernel set and thread count,
// MatmulForward and MatmulBackward give the bits of their naive twins (one
// FMA chain per element, k in order, continuing the gradient's old value),
// with and without bias, forward and all three backward products,
// accumulating onto non-zero grads. So the sets agree with each other bit
// for bit.
func TestMatmulSetsBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	shapes := append([]struct{ B, C, OC int }{}, matmulShapes...)
	shapes = append(shapes, struct{ B, C, OC int }{sizes(48, 200), sizes(96, 300), sizes(80, 333)})
	for _, level := range biLevels() {
		for _, threads := range []int{1, 3} {
			runtime.GOMAXPROCS(threads)
			for i, s := range shapes {
				name := fmt.Sprintf("%s/threads=%d/%dx%dx%d", biLevelName[level], threads, s.B, s.C, s.OC)
				t.Run(name, func(t *testing.T) {
					useSet(t, level)
					checkMatmulExact(t, rand.New(rand.NewSource(int64(i))), s.B, s.C, s.OC)
				})
			}
		}
	}
}

func checkMatmulExact(t *testing.T, r *rand.Rand, B, C, OC int) {
	t.Helper()
	inp, w, bias := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)
	for _, bs := range [][]float32{nil, bias} {
		got, want := randSlice(r, B*OC, 1), make([]float32, B*OC) // out is written, not accumulated
		MatmulForward(got, inp, w, bs, B, C, OC)
		naiveMatmulForwardBI(want, inp, w, bs, B, C, OC)
		assertClose(t, fmt.Sprintf("out(bias=%v)", bs != nil), got, want, 0, 0)
	}
	dout := randSlice(r, B*OC, 1)
	di, dw, db := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)
	wi, ww, wb := clone(di), clone(dw), clone(db)
	MatmulBackward(di, dw, db, dout, inp, w, B, C, OC)
	naiveMatmulBackward(wi, ww, wb, dout, inp, w, B, C, OC)
	assertClose(t, "dinp", di, wi, 0, 0)
	assertClose(t, "dweight", dw, ww, 0, 0)
	assertClose(t, "dbias", db, wb, 0, 0)
	// nil grads are skipped
	MatmulBackward(nil, dw, nil, dout, inp, w, B, C, OC)
	MatmulBackward(di, nil, nil, dout, inp, w, B, C, OC)
}

// naiveGemm is gemm's specification: c[m,n] (old value when acc, else +0)
// then fma32 of op(a)[m,k]·op(b)[k,n] for k in order.
func naiveGemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, acc bool, c []float32, ldc int) {
	for m := range M {
		for n := range N {
			var s float32
			if acc {
				s = c[m*ldc+n]
			}
			for k := range K {
				ai, bi := m*lda+k, k*ldb+n
				if transA {
					ai = k*lda + m
				}
				if transB {
					bi = n*ldb + k
				}
				x, y := a[ai], b[bi]
				s = fma32(x, y, s)
			}
			c[m*ldc+n] = s
		}
	}
}

// TestGemmStrided: gemm with every transpose combination, strides larger
// than the rows, accumulation or not, serial or parallel, on every kernel
// set, equals naiveGemm bit for bit and leaves the padding of c alone.
func TestGemmStrided(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, level := range biLevels() {
		useSet(t, level)
		for _, s := range []struct{ M, N, K int }{{1, 1, 1}, {3, 17, 5}, {33, 20, 70}, {100, 45, 9}, {7, 7, 0}} {
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, acc := range []bool{false, true} {
					for _, par := range []bool{false, true} {
						ar, ac := s.M, s.K
						if tr[0] {
							ar, ac = s.K, s.M
						}
						br, bc := s.K, s.N
						if tr[1] {
							br, bc = s.N, s.K
						}
						lda, ldb, ldc := ac+3, bc+2, s.N+5
						a, b := randSlice(r, max(1, ar*lda), 1), randSlice(r, max(1, br*ldb), 1)
						c := randSlice(r, s.M*ldc, 1)
						want := clone(c)
						gemm(tr[0], tr[1], s.M, s.N, s.K, a, lda, b, ldb, acc, c, ldc, par)
						naiveGemm(tr[0], tr[1], s.M, s.N, s.K, a, lda, b, ldb, acc, want, ldc)
						name := fmt.Sprintf("%s %dx%dx%d trans=%v acc=%v par=%v", biLevelName[level], s.M, s.N, s.K, tr, acc, par)
						assertClose(t, name, c, want, 0, 0)
					}
				}
			}
		}
	}
}

// TestGemmKChunks: with a packing scratch of a few rows, gemm packs b
// (K, N) slice by slice (MatmulBackward's dinp of the LM head: K is the
// vocabulary) and still equals naiveGemm bit for bit, accumulating or
// not, strided, on every kernel set; so do MatmulBackward and
// MatmulForward, which packs its weight slice by slice (with and without
// bias, past a row block).
func TestGemmKChunks(t *testing.T) {
	defer func(n int) { gemmPackFloats = n }(gemmPackFloats)
	r := rand.New(rand.NewSource(9))
	for _, level := range biLevels() {
		useSet(t, level)
		for _, pack := range []int{1, 40, 17 * 20} {
			gemmPackFloats = pack
			for _, s := range []struct{ M, N, K int }{{3, 17, 50}, {33, 20, 70}, {5, 40, 1100}} {
				for _, transA := range []bool{false, true} {
					for _, acc := range []bool{false, true} {
						ar, ac := s.M, s.K
						if transA {
							ar, ac = s.K, s.M
						}
						lda, ldb, ldc := ac+3, s.N+2, s.N+5
						a, b := randSlice(r, ar*lda, 1), randSlice(r, s.K*ldb, 1)
						c := randSlice(r, s.M*ldc, 1)
						want := clone(c)
						gemm(transA, false, s.M, s.N, s.K, a, lda, b, ldb, acc, c, ldc, true)
						naiveGemm(transA, false, s.M, s.N, s.K, a, lda, b, ldb, acc, want, ldc)
						name := fmt.Sprintf("%s pack=%d %dx%dx%d transA=%v acc=%v", biLevelName[level], pack, s.M, s.N, s.K, transA, acc)
						assertClose(t, name, c, want, 0, 0)
					}
				}
			}
			checkMatmulExact(t, rand.New(rand.NewSource(int64(pack))), 7, 30, 900)
			checkMatmulExact(t, rand.New(rand.NewSource(int64(pack))), 130, 3, 41)
		}
	}
}

// TestKernelSetErrors: an unknown set, and a set above the CPU's, are
// errors naming the sets this CPU can run.
func TestKernelSetErrors(t *testing.T) {
	defer func() { _ = UseKernelSet(biLevelName[biDetectedLevel]) }()
	if err := UseKernelSet("sse"); err == nil || !containsAll(err.Error(), `"sse"`, "go") {
		t.Fatalf("unknown set: %v", err)
	}
	if biDetectedLevel < 2 {
		if err := UseKernelSet("avx512"); err == nil {
			t.Fatal("avx512 accepted on a CPU without it")
		}
	}
	for _, s := range KernelSets() {
		if err := UseKernelSet(s); err != nil || KernelSet() != s {
			t.Fatalf("UseKernelSet(%s): %v, in use %s", s, err, KernelSet())
		}
	}
}

// BenchmarkMatmul times forward + backward (dinp and dweight) per kernel
// set at B·T = 256 tokens and reports GFLOP/s = 6·B·C·OC / time (2 for the
// forward, 4 for the backward).
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
		{"qwen_up_896x4864", 896, 4864},
		{"qwen_down_4864x896", 4864, 896},
	}
	for _, level := range biLevels() {
		for _, s := range shapes {
			b.Run(biLevelName[level]+"/"+s.name, func(b *testing.B) {
				if level == 0 && testing.Short() {
					b.Skip("the Go set is slow; skipped under -short")
				}
				useSet(b, level)
				r := rand.New(rand.NewSource(1))
				inp, w := randSlice(r, BT*s.C, 1), randSlice(r, s.OC*s.C, 0.05)
				out, dout := make([]float32, BT*s.OC), randSlice(r, BT*s.OC, 1)
				di, dw := make([]float32, BT*s.C), make([]float32, s.OC*s.C)
				MatmulForward(out, inp, w, nil, BT, s.C, s.OC) // warm up (threads, scratch)
				b.ResetTimer()
				c0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					MatmulForward(out, inp, w, nil, BT, s.C, s.OC)
					MatmulBackward(di, dw, nil, dout, inp, w, BT, s.C, s.OC)
				}
				flops := 6 * float64(BT) * float64(s.C) * float64(s.OC) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := cpuSeconds() - c0; cpu > 0 {
					b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}
