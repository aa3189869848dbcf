//go:build !cgo || !amd64

package kernels

var bf16Native = false

// BF16Native reports whether bf16 matmuls run the VDPBF16PS instruction
// (never without cgo).
func BF16Native() bool { return false }

func bf16GemmRange(out []float32, x []uint32, pw *PackedWeightBF16, bias []float32, m0, m1, p0, p1 int) {
	bf16GemmRangeGo(out, x, pw, bias, m0, m1, p0, p1)
}
