package kernels

import (
	"math"
)

// adamwUpdate follows torch.optim.AdamW (decoupled weight decay,
// bias-corrected moments). Element-wise, parallel over ranges.
func adamwUpdate(params, m, v, grads []float32, N int, cfg AdamWConfig, t int) {
	bc1 := 1 - math.Pow(float64(cfg.Beta1), float64(t))
	bc2 := 1 - math.Pow(float64(cfg.Beta2), float64(t))
	stepSize := float32(float64(cfg.LR) / bc1)
	bc2sqrt := float32(math.Sqrt(bc2))
	decay := 1 - cfg.LR*cfg.WeightDecay
	b1, b2 := cfg.Beta1, cfg.Beta2
	eps := cfg.Eps
	parallelFor(N, grainElems/4, func(lo, hi int) {
		p, mm, vv, g := params[lo:hi], m[lo:hi], v[lo:hi], grads[lo:hi]
		for i := range p {
			gi := g[i]
			mi := b1*mm[i] + (1-b1)*gi
			vi := b2*vv[i] + (1-b2)*gi*gi
			mm[i], vv[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/bc2sqrt + eps
			p[i] = p[i]*decay - stepSize*mi/denom
		}
	})
}

// adamwStep is scale(grads, sc) followed by adamwUpdate
// (step t), in one pass and without writing grads, and, with zero, sets
// grads to 0 afterwards. It multiplies by 1/sqrt(1−β2ᵗ) where kernels
// divides (one division per element instead of two: the loop is bound by
// divisions and square roots), so it agrees with them to float32
// rounding, not bit for bit (TestAdamWStep). Each range runs adamwRange:
// C loops for AVX-512 and AVX2 under cgo, adamwRangeGo otherwise, the same
// bits (TestAdamWRangeSetsBitIdentical).
func adamwStep(p, m, v, g []float32, sc float32, cfg AdamWConfig, t int, zero bool) {
	bc1 := 1 - math.Pow(float64(cfg.Beta1), float64(t))
	bc2 := 1 - math.Pow(float64(cfg.Beta2), float64(t))
	k := adamwConsts{sc: sc, b1: cfg.Beta1, b2: cfg.Beta2, eps: cfg.Eps,
		stepSize: float32(float64(cfg.LR) / bc1), invBc2: float32(1 / math.Sqrt(bc2)),
		decay: 1 - cfg.LR*cfg.WeightDecay}
	parallelForBlocks(len(p), adamwBlock, func(lo, hi int) {
		adamwRange(p[lo:hi], m[lo:hi], v[lo:hi], g[lo:hi], &k, zero)
	})
}

// adamwBlock is the most elements one call of adamwRange updates (16 MiB
// of the four arrays, a few milliseconds).
const adamwBlock = 1 << 20

// adamwConsts are one update's per-element constants.
type adamwConsts struct {
	sc, b1, b2, eps, stepSize, invBc2, decay float32
}

// adamwRangeGo is the update of adamwStep over len(p) elements. The
// explicit float32 conversions keep the compiler from fusing a product
// into an FMA (it may on GOAMD64=v3), so the bits are the C loops' (which
// are compiled without contraction) on every build.
func adamwRangeGo(p, m, v, g []float32, k *adamwConsts, zero bool) {
	m, v, g = m[:len(p)], v[:len(p)], g[:len(p)]
	sc, b1, b2, eps, stepSize, invBc2, decay := k.sc, k.b1, k.b2, k.eps, k.stepSize, k.invBc2, k.decay
	for i := range p {
		gi := g[i]
		if sc != 1 {
			gi *= sc
		}
		mi := float32(b1*m[i]) + float32((1-b1)*gi)
		vi := float32(b2*v[i]) + float32(float32((1-b2)*gi)*gi)
		m[i], v[i] = mi, vi
		denom := float32(float32(math.Sqrt(float64(vi)))*invBc2) + eps
		p[i] = float32(p[i]*decay) - float32(stepSize*mi)/denom
	}
	if zero {
		clear(g)
	}
}

// gradNorm sums squares in float64 over fixed chunks of reduceChunk
// elements, then adds the partial sums in chunk order.
func gradNorm(g []float32) float64 {
	n := len(g)
	chunks := (n + reduceChunk - 1) / reduceChunk
	partial := make([]float64, chunks)
	parallelFor(chunks, 4, func(lo, hi int) {
		c := lo
		for ; c+4 <= hi && (c+4)*reduceChunk <= n; c += 4 {
			sumSquares4(g[c*reduceChunk:(c+4)*reduceChunk], partial[c:c+4])
		}
		for ; c < hi; c++ {
			partial[c] = sumSquares(g[c*reduceChunk : min(n, (c+1)*reduceChunk)])
		}
	})
	var s float64
	for _, p := range partial {
		s += p
	}
	return math.Sqrt(s)
}

// sumSquares is Σ x² in float64, in order.
func sumSquares(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// sumSquares4 is sumSquares of four chunks of reduceChunk elements (g
// holds them one after another) into out[0:4]: four chains side by side,
// each in its own chunk's order, so the same bits as four sumSquares
// without one chain waiting on its add every element (2× faster on one
// core over 64 M elements, 24 → 12 ms, where memory then bounds it). A
// float32 squared is exact in float64, so a fused multiply-add, where the
// compiler makes one, rounds as the add alone.
func sumSquares4(g []float32, out []float64) {
	a := g[:reduceChunk]
	b := g[reduceChunk : 2*reduceChunk]
	c := g[2*reduceChunk : 3*reduceChunk]
	d := g[3*reduceChunk : 4*reduceChunk]
	var s0, s1, s2, s3 float64
	for i := range a {
		s0 += float64(a[i]) * float64(a[i])
		s1 += float64(b[i]) * float64(b[i])
		s2 += float64(c[i]) * float64(c[i])
		s3 += float64(d[i]) * float64(d[i])
	}
	out[0], out[1], out[2], out[3] = s0, s1, s2, s3
}

func scale(x []float32, s float32) {
	parallelFor(len(x), grainElems, func(lo, hi int) {
		for i := range x[lo:hi] {
			x[lo+i] *= s
		}
	})
}
