package kernels

import "math"

// expf is exp for float32: Cephes' expf — range reduction x = n·ln2 + r
// with ln2 split in two parts, then a degree-6 polynomial on |r| <= ln2/2 —
// within 2 float32 ulps of exp (TestExpf). Measured at about 6 CPU-ns
// against 9 for float32(math.Exp(float64(x))); the softmax-type kernels
// spend most of their time in exp (V = 50k–150k per row). Pure arithmetic,
// hence deterministic; its rare paths (subnormal results, overflow) take
// goExp, not math.Exp, whose bits depend on the CPU (expd.go), as the CUDA
// kernels' goexpf does.
func expf(x float32) float32 {
	if x < -87.33654 { // below the smallest normal result; also -Inf
		if x < -103.97208 {
			return 0
		}
		return float32(goExp(float64(x))) // subnormal result: rare
	}
	if !(x <= 88.37626) { // NaN, or 2^n would leave the float32 exponent range
		if x != x {
			return x
		}
		return float32(goExp(float64(x))) // up to +Inf
	}
	fx := x * 1.44269504088896341 // x·log2(e), rounded to nearest below
	if fx < 0 {
		fx -= 0.5
	} else {
		fx += 0.5
	}
	n := int32(fx)
	fn := float32(n)
	r := x - fn*0.693359375 - fn*-2.12194440e-4
	z := r * r
	p := ((((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r+5.0000001201e-1)*z + r) + 1
	return p * math.Float32frombits(uint32(n+127)<<23)
}
