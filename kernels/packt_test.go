package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPackTSetsIdentical: packTStrided's C loop writes the Go loop's panels
// (full and partial panels, rows ldt > N apart, K across packTRows blocks).
func TestPackTSetsIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][3]int{{1, 1, 1}, {70, 33, 40}, {129, 16, 16}, {200, 50, 64}} {
		K, N, ldt := sh[0], sh[1], sh[2]
		wt := make([]float32, (K-1)*ldt+N)
		for i := range wt {
			wt[i] = rng.Float32()
		}
		want := packTStrided(nil, wt, ldt, K, N, false)
		for i := range want.data { // the Go loop, whatever the set
			want.data[i] = -1
		}
		packTRangeGo(want.data, wt, ldt, K, N, 0, want.panels())
		for level := range biDetectedLevel + 1 {
			useSet(t, level)
			got := packTStrided(&PackedWeight{data: slices.Repeat([]float32{7}, len(want.data))}, wt, ldt, K, N, true)
			if !slices.Equal(got.data, want.data) {
				t.Fatalf("set %s K=%d N=%d ldt=%d: packed panels differ from the Go loop's", KernelSet(), K, N, ldt)
			}
		}
	}
}

// BenchmarkPackT: packing lm_head's shape transposed (the fp32 head
// backward's dlnf = dlogits·W packs W (V, C) as Wᵀ, per chunk of rows),
// per kernel set.
func BenchmarkPackT(b *testing.B) {
	const V, C = 151936, 896
	w := make([]float32, V*C)
	for i := range w {
		w[i] = float32(i)
	}
	var pw *PackedWeight
	for level := range biDetectedLevel + 1 {
		b.Run(kernelSetNames[level], func(b *testing.B) {
			useSet(b, level)
			for b.Loop() {
				pw = packTStrided(pw, w, C, V, C, true)
			}
			b.ReportMetric(float64(V*C*4)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}
