//go:build !cgo || !amd64

package kernels

import "fmt"

var bf16HasDP, bf16Native = false, false

// BF16Dots lists the dot products bf16 matmuls can run on: "fma".
func BF16Dots() []string { return []string{"fma"} }

// UseBF16Dot accepts "" and "fma", the only dot product without cgo.
func UseBF16Dot(name string) error {
	switch name {
	case "", "fma":
		return nil
	case "vdpbf16ps":
		return fmt.Errorf("bf16 dot product %q is not available in this build (no cgo); it can run fma", name)
	}
	return fmt.Errorf("unknown bf16 dot product %q; this build can run fma", name)
}

// BF16Native reports whether bf16 matmuls run the VDPBF16PS instruction
// (never without cgo).
func BF16Native() bool { return false }

// BF16Dot names what runs bf16 matmuls' dot products: FMAs (Go's).
func BF16Dot() string { return "FMAs" }

func bf16GemmRange(out []float32, x []uint32, pw *PackedWeightBF16, bias []float32, acc bool, m0, m1, p0, p1 int) {
	bf16GemmRangeGo(out, x, pw, bias, acc, m0, m1, p0, p1)
}

func bf16XRange(x []uint32, a []float32, K, ldm, ldk, m0, m1 int) {
	bf16XRangeGo(x, a, K, ldm, ldk, m0, m1)
}

func bf16PackRange(dst []uint32, w []float32, N, K, ldn, ldk, p0, p1 int) {
	bf16PackRangeGo(dst, w, N, K, ldn, ldk, p0, p1)
}

func bf16PackColsRange(dst []uint32, w []float32, N, K, ldk, i0, i1 int) {
	bf16PackColsRangeGo(dst, w, N, K, ldk, i0, i1)
}
