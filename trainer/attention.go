package trainer

import (
	"math"
	"sync"

	"rljob/kernels"
)

// The backward of causal self-attention computed as matrix products, so the
// work goes through kernels' matmul (OpenBLAS when built with it). The
// forward is kernels.AttentionForwardBI (batch-invariant: the sampler's
// KV-cache decode gives the same bits). Per sequence b and query head h,
// S = Q_h·K_hᵀ (T, T), P = softmax(scale·S) under the causal and padding
// masks, O_h = P·V_h; the backward recomputes P from the forward's saved
// log-sum-exp (nothing of size (T, T) is kept between passes):
//
//	dP = dO·Vᵀ,  D_t = Σ_d dO[t,d]·O[t,d],  dS = P∘(dP − D)·scale
//	dQ = dS·K,   dK = dSᵀ·Q,   dV = Pᵀ·dO
//
// It computes the full (T, T) product and masks it (twice the causal
// FLOPs), which still beats a scalar loop by an order of magnitude.
// Semantics, shapes and masks are exactly kernels.AttentionForward's and
// kernels.AttentionBackward's, which are the reference (TestAttentionMatmul).

// attentionBackward is kernels.AttentionBackward, through matmuls when
// OpenBLAS is linked (8× faster at T = 128 on the reference machine) and
// the kernels' direct loop otherwise (the pure-Go matmul does not beat it).
func attentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	if kernels.BLAS() {
		attentionBackwardMM(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
		return
	}
	kernels.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

// attnScratch holds one goroutine's buffers for a group of g query heads
// sharing a kv head: the g heads' rows are stacked, so each product is one
// matmul call of g·T rows instead of g calls of T.
type attnScratch struct {
	qh, oh, doh, dqh []float32 // (g·T, HS) stacked query heads
	kh, vh, vt       []float32 // (T, HS); vt is (HS, T)
	dkh, dvh         []float32 // (T, HS)
	s, dp            []float32 // (g·T, T)
}

var attnPool sync.Pool

func getAttnScratch(g, T, HS int) *attnScratch {
	if x, ok := attnPool.Get().(*attnScratch); ok && len(x.s) == g*T*T && len(x.kh) == T*HS {
		return x
	}
	f := func(n int) []float32 { return make([]float32, n) }
	return &attnScratch{qh: f(g * T * HS), oh: f(g * T * HS), doh: f(g * T * HS), dqh: f(g * T * HS),
		kh: f(T * HS), vh: f(T * HS), vt: f(T * HS), dkh: f(T * HS), dvh: f(T * HS),
		s: f(g * T * T), dp: f(g * T * T)}
}

// gatherHeads copies heads h0..h0+g−1 of x (B, T, NH, HS) for sequence b
// into dst (g·T, HS), head-major: row j·T + t is head h0+j at position t.
func gatherHeads(dst, x []float32, b, h0, g, T, NH, HS int) {
	for j := range g {
		for t := range T {
			o := ((b*T+t)*NH + h0 + j) * HS
			r := (j*T + t) * HS
			copy(dst[r:r+HS], x[o:o+HS])
		}
	}
}

// scatterHeads is gatherHeads' inverse; with add it accumulates (+=).
func scatterHeads(x, src []float32, b, h0, g, T, NH, HS int, add bool) {
	for j := range g {
		for t := range T {
			o := ((b*T+t)*NH + h0 + j) * HS
			r := (j*T + t) * HS
			if !add {
				copy(x[o:o+HS], src[r:r+HS])
				continue
			}
			dst := x[o : o+HS]
			for i, v := range src[r : r+HS] {
				dst[i] += v
			}
		}
	}
}

// attnProbs turns the raw scores s (T, T) of sequence b into
// probabilities in place: row t is softmax(scale·s[t, :]) over the keys
// u ≤ t with valid[b,u], 0 elsewhere; a padded query's row is all 0. With
// lse nil it writes each row's log-sum-exp into lseOut (T); otherwise it
// uses the given lse (backward).
func attnProbs(s []float32, valid []bool, b, T int, scale float32, lse, lseOut []float32) {
	for t := range T {
		row := s[t*T : (t+1)*T]
		if valid != nil && !valid[b*T+t] {
			clear(row)
			if lseOut != nil {
				lseOut[t] = 0
			}
			continue
		}
		ok := func(u int) bool { return valid == nil || valid[b*T+u] }
		if lse != nil {
			l := lse[t]
			for u := 0; u <= t; u++ {
				if ok(u) {
					row[u] = expf(row[u]*scale - l)
				} else {
					row[u] = 0
				}
			}
			clear(row[t+1:])
			continue
		}
		mx := float32(math.Inf(-1))
		for u := 0; u <= t; u++ {
			if ok(u) {
				row[u] *= scale
				mx = max(mx, row[u])
			}
		}
		var sum float32
		for u := 0; u <= t; u++ {
			if ok(u) {
				e := expf(row[u] - mx)
				row[u] = e
				sum += e
			} else {
				row[u] = 0
			}
		}
		inv := 1 / sum
		for u := 0; u <= t; u++ {
			row[u] *= inv
		}
		clear(row[t+1:])
		lseOut[t] = mx + float32(math.Log(float64(sum)))
	}
}

// attentionBackwardMM is kernels.AttentionBackward computed with matmuls;
// dq, dk, dv are accumulated (+=).
func attentionBackwardMM(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getAttnScratch(g, T, HS)
		defer attnPool.Put(sc)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			h0 := kh * g
			gatherHeads(sc.kh, k, b, kh, 1, T, NKV, HS)
			gatherHeads(sc.vh, v, b, kh, 1, T, NKV, HS)
			gatherHeads(sc.qh, q, b, h0, g, T, NH, HS)
			gatherHeads(sc.doh, dout, b, h0, g, T, NH, HS)
			gatherHeads(sc.oh, out, b, h0, g, T, NH, HS)
			kernels.MatmulForward(sc.s, sc.qh, sc.kh, nil, g*T, HS, T)
			for j := range g {
				h := h0 + j
				attnProbs(sc.s[j*T*T:(j+1)*T*T], valid, b, T, scale, lse[(b*NH+h)*T:(b*NH+h+1)*T], nil)
			}
			kernels.MatmulForward(sc.dp, sc.doh, sc.vh, nil, g*T, HS, T)
			for r := range g * T {
				var d float32
				do, o := sc.doh[r*HS:(r+1)*HS], sc.oh[r*HS:(r+1)*HS]
				for i := range do {
					d += do[i] * o[i]
				}
				p, dp := sc.s[r*T:(r+1)*T], sc.dp[r*T:(r+1)*T]
				for u := range dp {
					dp[u] = p[u] * (dp[u] - d) * scale
				}
			}
			clear(sc.dqh)
			clear(sc.dkh)
			clear(sc.dvh)
			// dQ = dS·K; dK = dSᵀ·Q summed over the group's rows; dV = Pᵀ·dO likewise
			kernels.MatmulBackward(sc.dqh, sc.dkh, nil, sc.dp, sc.qh, sc.kh, g*T, HS, T)
			kernels.MatmulBackward(nil, sc.dvh, nil, sc.s, sc.doh, sc.vh, g*T, HS, T)
			scatterHeads(dq, sc.dqh, b, h0, g, T, NH, HS, true)
			scatterHeads(dk, sc.dkh, b, kh, 1, T, NKV, HS, true)
			scatterHeads(dv, sc.dvh, b, kh, 1, T, NKV, HS, true)
		}
	})
}

// transpose writes dst (C, R) = srcᵀ for src (R, C).
func transpose(dst, src []float32, R, C int) {
	for r := range R {
		for c := range C {
			dst[c*R+r] = src[r*C+c]
		}
	}
}
