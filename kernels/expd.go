package kernels

import "math"

// goExp is math.Exp(x) as Go computes it on amd64 with AVX and FMA
// (src/math/exp_amd64.s, its "avxfma" path), step by step: the FMAs as
// math.FMA, every other operation rounded on its own (each product wrapped
// in float64(·) so that no compiler fuses it). The loss head and the
// sampler use it instead of math.Exp for two reasons:
//
//   - math.Exp's bits depend on the CPU: the same assembly takes another
//     path, without FMA, on an x86-64 without AVX/FMA, and arm64 has its
//     own code. goExp gives the FMA path's bits everywhere (math.FMA is
//     exact in software too), so a run's numbers are the same on every
//     machine.
//   - It has a vector twin in C (softmaxrow_c.go: 8 or 4 lanes), with the
//     same operations, so the avx512 and avx2 kernel sets compute a row of
//     151,936 exps about ten times faster than one math.Exp call each.
//
// TestGoExpIsMathExp checks it against math.Exp bit for bit on a CPU with
// FMA; kernels/cuda's goexp (gomath.h) is the same port.
func goExp(x float64) float64 {
	const (
		log2e    = 1.4426950408889634073599246810018920
		ln2U     = 0.69314718055966295651160180568695068359375
		ln2L     = 0.28235290563031577122588448175013436025525412068e-12
		overflow = 7.09782712893384e+02
	)
	b := math.Float64bits(x)
	if b&^(1<<63) >= 0x7ff0000000000000 { // not finite
		if b == 0xfff0000000000000 {
			return 0 // -Inf
		}
		return x // NaN or +Inf
	}
	if x > overflow {
		return math.Inf(1)
	}
	e := cvtsd2sl(float64(log2e * x))
	fe := float64(e)
	r := math.FMA(-ln2U, fe, x)
	r = math.FMA(-ln2L, fe, r)
	r = float64(r * 0.0625)
	p := 2.4801587301587301587e-5
	p = math.FMA(p, r, 1.9841269841269841270e-4)
	p = math.FMA(p, r, 1.3888888888888888889e-3)
	p = math.FMA(p, r, 8.3333333333333333333e-3)
	p = math.FMA(p, r, 4.1666666666666666667e-2)
	p = math.FMA(p, r, 1.6666666666666666667e-1)
	p = math.FMA(p, r, 0.5)
	p = math.FMA(p, r, 1.0)
	x0 := float64(r * p)
	x1 := x0 + 2
	x0 = float64(x0 * x1)
	x1 = x0 + 2
	x0 = float64(x0 * x1)
	x1 = x0 + 2
	x0 = float64(x0 * x1)
	x1 = x0 + 2
	x0 = math.FMA(x0, x1, 1.0)
	return ldexpAsm(x0, int64(e)+0x3ff)
}

// cvtsd2sl is the instruction CVTSD2SL under the default rounding: x
// rounded to the nearest int32 (ties to even), or the "integer indefinite"
// -2³¹ when that is out of range or x is NaN.
func cvtsd2sl(x float64) int32 {
	r := math.RoundToEven(x)
	if !(r >= math.MinInt32 && r <= math.MaxInt32) {
		return math.MinInt32
	}
	return int32(r)
}

// ldexpAsm is exp_amd64.s's last step: x·2^(be−1023) for the biased
// exponent be, through its denormal and overflow branches.
func ldexpAsm(x float64, be int64) float64 {
	if be <= 0 {
		if be < -52 {
			return 0
		}
		x = float64(x * math.Float64frombits(uint64(be+0x3fe)<<52))
		return float64(x * math.Float64frombits(1<<52))
	}
	if be >= 0x7ff {
		return math.Inf(1)
	}
	return float64(x * math.Float64frombits(uint64(be)<<52))
}
