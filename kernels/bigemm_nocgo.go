//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) the batch-invariant matmul runs the Go loop,
// which gives the same bits as the C kernels (bigemm.go).

const (
	biDetectedLevel = 0
	biCurLevel      = 0
	cgoKernels      = false
)

func biLevel(want int) int { return 0 }

func biGemmRange(g *biGemm, m0, m1, p0, p1 int) { biGemmRangeGo(g, m0, m1, p0, p1) }

func packRange(pw *PackedWeight, w []float32, ldw, p0, p1 int) { packRangeGo(pw, w, ldw, p0, p1) }

func biGemmHeads(out, inp []float32, pw *PackedWeight, wstride, heads, M int) {
	biGemmHeadsGo(out, inp, pw, wstride, heads, M)
}

func fmaPeak(n int) (lanes int) { return 0 }

func microLoop(inplace bool, K, reps int) (fmas int) { return 0 }
