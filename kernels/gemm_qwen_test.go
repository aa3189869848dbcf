package kernels

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
)

// TestGemmBlockingEdges checks the fp32 GEMM's blocking against its
// specification, bit for bit, on the C kernel sets at 1 and 2 threads,
// where every blocking edge is hit at once: K = 1600 is two passes of k
// (biKBlock, then the rest), M = 110 is a 96-row block plus 14 rows (a
// 12-row group and a 2-row remainder), N = 1043 is 66 panels (wider than a
// tile's 64, and 3 columns in the last). Forward with a bias (MatmulForward:
// the bias starts the first pass only), dinp += dout·W (gemm nn, rows read
// in place) and dW += doutᵀ·inp (gemm tn, rows packed).
func TestGemmBlockingEdges(t *testing.T) {
	defer biLevel(biDetectedLevel)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const M, N, K = 110, 1043, 1600
	if biDetectedLevel == 0 {
		t.Skip("no C kernel set in this build or on this CPU: the Go loop is the specification itself")
	}
	if K <= biKBlock+biKBlock/2 {
		t.Fatalf("K = %d is one pass at biKBlock %d: make it longer", K, biKBlock)
	}
	r := rand.New(rand.NewSource(5))
	inp, w, bias := randSlice(r, M*K, 1), randSlice(r, N*K, 0.05), randSlice(r, N, 0.5)
	a := randSlice(r, K*M, 1) // aᵀ (K, M) for the tn product
	b := randSlice(r, K*N, 0.05)
	c0 := randSlice(r, M*N, 1)
	type product struct {
		name string
		run  func(out []float32)
	}
	products := []product{
		{"fwd+bias", func(out []float32) { MatmulForward(out, inp, w, bias, M, K, N) }},
		{"nn+=", func(out []float32) { copy(out, c0); gemm(false, false, M, N, K, inp, K, b, N, true, out, N, true) }},
		{"tn+=", func(out []float32) { copy(out, c0); gemm(true, false, M, N, K, a, M, b, N, true, out, N, true) }},
	}
	specs := make([][]float32, len(products))
	specs[0] = make([]float32, M*N)
	naiveMatmulForwardBI(specs[0], inp, w, bias, M, K, N)
	specs[1] = append([]float32(nil), c0...)
	naiveGemm(false, false, M, N, K, inp, K, b, N, true, specs[1], N)
	specs[2] = append([]float32(nil), c0...)
	naiveGemm(true, false, M, N, K, a, M, b, N, true, specs[2], N)
	for _, level := range biLevels() {
		if level == 0 {
			continue // the Go loop is the spec's own loop (TestMatmulSetsBitIdentical runs it)
		}
		biLevel(level)
		for _, threads := range []int{1, 2} {
			runtime.GOMAXPROCS(threads)
			for i, p := range products {
				out := make([]float32, M*N)
				p.run(out)
				if err := sameBits(out, specs[i]); err != nil {
					t.Errorf("%s", fmt.Sprintf("%s/%s/threads=%d: %v", biLevelName[level], p.name, threads, err))
				}
			}
		}
	}
}

// TestPackChunk: gemm's packing chunks never exceed gemmPackFloats, cover
// every row, and split evenly where align allows (896 rows of 4864, the
// down projection's weight, are 2 × 448, not 848 + 48).
func TestPackChunk(t *testing.T) {
	for _, c := range []struct{ rows, width, align, want int }{
		{896, 4864, 16, 448},
		{896, 896, 16, 896},       // fits: all rows
		{151936, 896, 1024, 4096}, // LM head dinp: 4096 = the largest multiple of 1024 that fits
		{16384, 896, 1024, 4096},
		{100, 1 << 21, 16, 2}, // 2 rows fit: no multiple of 16 does
		{100, 1 << 23, 16, 1}, // not even one row fits: 1
	} {
		got := packChunk(c.rows, c.width, c.align)
		if got != c.want {
			t.Errorf("packChunk(%d, %d, %d) = %d, want %d", c.rows, c.width, c.align, got, c.want)
		}
		if got > 1 && got*c.width > gemmPackFloats {
			t.Errorf("packChunk(%d, %d, %d) = %d: %d floats > gemmPackFloats", c.rows, c.width, c.align, got, got*c.width)
		}
	}
}
