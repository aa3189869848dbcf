package kernels

import (
	"fmt"
	"math"
)

// Element-wise and row-wise layers: embedding, RMSNorm, RoPE, SwiGLU,
// residual. Each is parallel over rows (or element ranges) with every output
// element owned by one goroutine, so results do not depend on GOMAXPROCS.

// grainElems is the minimum number of elements a goroutine gets for
// element-wise work (smaller loops are not worth a goroutine).
const grainElems = 1 << 15

// rowGrain returns how many rows of width C make one parallel grain.
func rowGrain(C int) int {
	if C <= 0 {
		return 1
	}
	return max(1, grainElems/C)
}

func embeddingForward(out, wte []float32, tokens []int32, N, C int) {
	V := len(wte) / C
	parallelFor(N, rowGrain(C), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			t := int(tokens[n])
			if t < 0 || t >= V {
				panic(fmt.Sprintf("kernels: embedding: token %d at row %d out of range [0,%d)", t, n, V))
			}
			copy(out[n*C:(n+1)*C], wte[t*C:(t+1)*C])
		}
	})
}

// embeddingBackward splits the channels, not the rows, among goroutines:
// several rows may hit the same table row, and splitting channels keeps the
// sum over rows in the order n = 0..N-1 for every element.
func embeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	parallelFor(C, max(1, grainElems/max(1, N)), func(lo, hi int) {
		for n := 0; n < N; n++ {
			t := int(tokens[n])
			d := dwte[t*C+lo : t*C+hi]
			s := dout[n*C+lo : n*C+hi]
			for c := range d {
				d[c] += s[c]
			}
		}
	})
}

func rmsnormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	weight = weight[:C]
	parallelFor(N, rowGrain(C), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x := inp[n*C : (n+1)*C]
			ss := dot(x, x)
			r := 1 / float32(math.Sqrt(float64(ss/float32(C)+eps)))
			rstd[n] = r
			o := out[n*C : (n+1)*C]
			for c := range x {
				o[c] = x[c] * r * weight[c]
			}
		}
	})
}

func rmsnormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	weight = weight[:C]
	parallelFor(N, rowGrain(C), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x := inp[n*C : (n+1)*C]
			d := dout[n*C : (n+1)*C]
			di := dinp[n*C : (n+1)*C]
			r := rstd[n]
			var s float32
			for c := range x {
				s += d[c] * weight[c] * x[c]
			}
			s *= r / float32(C) // mean(g * xhat)
			for c := range x {
				di[c] += r * (d[c]*weight[c] - x[c]*r*s)
			}
		}
	})
	if dweight == nil {
		return
	}
	// dweight: split channels; each channel sums rows in order 0..N-1.
	parallelFor(C, max(1, grainElems/max(1, N)), func(lo, hi int) {
		dw := dweight[lo:hi]
		for n := 0; n < N; n++ {
			r := rstd[n]
			x := inp[n*C+lo : n*C+hi]
			d := dout[n*C+lo : n*C+hi]
			for c := range dw {
				dw[c] += d[c] * x[c] * r
			}
		}
	})
}

// ropeInvFreq returns HF's inv_freq[i] = 1/theta^(2i/HS) computed as HF
// does in float32: the exponent 2i/HS in float32, theta^e rounded to
// float32, then a float32 division.
func ropeInvFreq(i, HS int, theta float32) float32 {
	p := float32(math.Pow(float64(theta), float64(float32(2*i)/float32(HS))))
	return 1 / p
}

// ropeAngle returns cos and sin of pos*inv_freq[i]; the product is a
// float32 product as in HF's forward, cos/sin are rounded from float64.
func ropeAngle(pos int32, i, HS int, theta float32) (float32, float32) {
	a := float32(pos) * ropeInvFreq(i, HS, theta)
	s, c := math.Sincos(float64(a))
	return float32(c), float32(s)
}

// ropeRows applies f(n, cos, sin) for each token row in parallel, with the
// cos/sin tables of that row's position (HS/2 each).
func ropeRows(N, NH, HS int, pos []int32, theta float32, f func(n int, cs, sn []float32)) {
	if HS%2 != 0 {
		panic(fmt.Sprintf("kernels: rope: head size %d is odd", HS))
	}
	half := HS / 2
	inv := make([]float32, half)
	for i := range inv {
		inv[i] = ropeInvFreq(i, HS, theta)
	}
	parallelFor(N, rowGrain(NH*HS), func(lo, hi int) {
		cs := make([]float32, half)
		sn := make([]float32, half)
		for n := lo; n < hi; n++ {
			p := float32(pos[n])
			for i := range cs {
				s, c := math.Sincos(float64(p * inv[i]))
				cs[i], sn[i] = float32(c), float32(s)
			}
			f(n, cs, sn)
		}
	})
}

func ropeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	half := HS / 2
	ropeRows(N, NH, HS, pos, theta, func(n int, cs, sn []float32) {
		for h := 0; h < NH; h++ {
			base := (n*NH + h) * HS
			x1 := inp[base : base+half]
			x2 := inp[base+half : base+HS]
			o1 := out[base : base+half]
			o2 := out[base+half : base+HS]
			for i := range cs {
				a, b := x1[i], x2[i]
				o1[i] = a*cs[i] - b*sn[i]
				o2[i] = b*cs[i] + a*sn[i]
			}
		}
	})
}

func ropeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	half := HS / 2
	ropeRows(N, NH, HS, pos, theta, func(n int, cs, sn []float32) {
		for h := 0; h < NH; h++ {
			base := (n*NH + h) * HS
			d1 := dout[base : base+half]
			d2 := dout[base+half : base+HS]
			g1 := dinp[base : base+half]
			g2 := dinp[base+half : base+HS]
			for i := range cs {
				a, b := d1[i], d2[i]
				g1[i] += a*cs[i] + b*sn[i]
				g2[i] += b*cs[i] - a*sn[i]
			}
		}
	})
}

// sigmoid is 1/(1+exp(-x)) with expf; for x < -87 expf(-x) overflows to
// +Inf and the result is 0, as it should be.
func sigmoid(x float32) float32 {
	return 1 / (1 + expf(-x))
}

func swigluForward(out, gate, up []float32, N int) {
	parallelFor(N, grainElems/8, func(lo, hi int) {
		swigluFwdRange(out[lo:hi], gate[lo:hi], up[lo:hi])
	})
}

func swigluBackward(dgate, dup, dout, gate, up []float32, N int) {
	parallelFor(N, grainElems/8, func(lo, hi int) {
		swigluBwdRange(dgate[lo:hi], dup[lo:hi], dout[lo:hi], gate[lo:hi], up[lo:hi])
	})
}

// swigluFwdRangeGo is out[i] = g·sigmoid(g)·up[i] for g = gate[i], i < len(out)
// (the pure-Go build's swigluFwdRange).
func swigluFwdRangeGo(out, gate, up []float32) {
	for i := range out {
		g := gate[i]
		out[i] = g * sigmoid(g) * up[i]
	}
}

// swigluBwdRangeGo accumulates dgate[i] += dout·up·s·(1 + g·(1−s)) and
// dup[i] += dout·g·s, s = sigmoid(g), for i < len(dgate) (the pure-Go
// build's swigluBwdRange).
func swigluBwdRangeGo(dgate, dup, dout, gate, up []float32) {
	for i := range dgate {
		g := gate[i]
		s := sigmoid(g)
		dgate[i] += dout[i] * up[i] * s * (1 + g*(1-s))
		dup[i] += dout[i] * g * s
	}
}

func residualForward(out, a, b []float32, N int) {
	parallelFor(N, grainElems, func(lo, hi int) {
		o, x, y := out[lo:hi], a[lo:hi], b[lo:hi]
		for i := range o {
			o[i] = x[i] + y[i]
		}
	})
}

func residualBackward(da, db, dout []float32, N int) {
	parallelFor(N, grainElems, func(lo, hi int) {
		d := dout[lo:hi]
		if da != nil {
			x := da[lo:hi]
			for i := range x {
				x[i] += d[i]
			}
		}
		if db != nil {
			y := db[lo:hi]
			for i := range y {
				y[i] += d[i]
			}
		}
	})
}

// dot returns Σ a[i]*b[i] over len(a) with 8 independent accumulators
// combined in a fixed order.
func dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
		s4 += a[i+4] * b[i+4]
		s5 += a[i+5] * b[i+5]
		s6 += a[i+6] * b[i+6]
		s7 += a[i+7] * b[i+7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// axpy does y[i] += a*x[i] over len(y).
func axpy(y []float32, a float32, x []float32) {
	n := len(y)
	x = x[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < n; i++ {
		y[i] += a * x[i]
	}
}
