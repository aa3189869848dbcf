//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) the batch-invariant matmul runs the Go loop,
// which gives the same bits as the C kernels (bigemm.go).

const biDetectedLevel = 0

func biLevel(want int) int { return 0 }

func biGemmRange(out, inp []float32, pw *PackedWeight, bias []float32, m0, m1, p0, p1 int) {
	biGemmRangeGo(out, inp, pw, bias, m0, m1, p0, p1)
}

func packRange(pw *PackedWeight, w []float32, p0, p1 int) { packRangeGo(pw, w, p0, p1) }

func biGemmHeads(out, inp []float32, pw *PackedWeight, wstride, heads, M int) {
	biGemmHeadsGo(out, inp, pw, wstride, heads, M)
}
