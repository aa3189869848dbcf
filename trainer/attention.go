package trainer

import (
	"math"
	"sync"

	"rljob/kernels"
)

// Causal self-attention computed as matrix products, so the work goes
// through kernels' matmul (OpenBLAS when built with it): per sequence b and
// query head h, S = Q_h·K_hᵀ (T, T), P = softmax(scale·S) under the causal
// and padding masks, O_h = P·V_h. The backward recomputes P from the saved
// log-sum-exp (nothing of size (T, T) is kept between passes):
//
//	dP = dO·Vᵀ,  D_t = Σ_d dO[t,d]·O[t,d],  dS = P∘(dP − D)·scale
//	dQ = dS·K,   dK = dSᵀ·Q,   dV = Pᵀ·dO
//
// It computes the full (T, T) product and masks it (twice the causal
// FLOPs), which still beats a scalar loop by an order of magnitude.
// Semantics, shapes and masks are exactly kernels.AttentionForward's and
// kernels.AttentionBackward's, which are the reference (TestAttentionMatmul).

// attentionForward is kernels.AttentionForward, through matmuls when
// OpenBLAS is linked (8× faster at T = 128 on the reference machine) and
// the kernels' direct loop otherwise (the pure-Go matmul does not beat it).
func attentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	if kernels.BLAS() {
		attentionForwardMM(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
		return
	}
	kernels.AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
}

// attentionBackward is kernels.AttentionBackward, dispatched as attentionForward.
func attentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	if kernels.BLAS() {
		attentionBackwardMM(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
		return
	}
	kernels.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

// attnScratch holds the per-goroutine (T, ·) buffers.
type attnScratch struct {
	qh, kh, vh, vt, oh, doh []float32 // (T, HS); vt is (HS, T)
	dqh, dkh, dvh           []float32 // (T, HS)
	s, dp                   []float32 // (T, T)
	d                       []float32 // (T)
}

var attnPool sync.Pool

func getAttnScratch(T, HS int) *attnScratch {
	if x, ok := attnPool.Get().(*attnScratch); ok && len(x.s) == T*T && len(x.qh) == T*HS {
		return x
	}
	f := func(n int) []float32 { return make([]float32, n) }
	return &attnScratch{qh: f(T * HS), kh: f(T * HS), vh: f(T * HS), vt: f(T * HS), oh: f(T * HS), doh: f(T * HS),
		dqh: f(T * HS), dkh: f(T * HS), dvh: f(T * HS), s: f(T * T), dp: f(T * T), d: f(T)}
}

// gatherHead copies head h of x (B, T, NH, HS) for sequence b into dst (T, HS).
func gatherHead(dst, x []float32, b, h, T, NH, HS int) {
	for t := range T {
		o := ((b*T+t)*NH + h) * HS
		copy(dst[t*HS:(t+1)*HS], x[o:o+HS])
	}
}

// addHead adds src (T, HS) into head h of x (B, T, NH, HS) for sequence b.
func addHead(x, src []float32, b, h, T, NH, HS int) {
	for t := range T {
		o := ((b*T+t)*NH + h) * HS
		dst := x[o : o+HS]
		for i, v := range src[t*HS : (t+1)*HS] {
			dst[i] += v
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
					row[u] = float32(math.Exp(float64(row[u]*scale - l)))
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
				e := float32(math.Exp(float64(row[u] - mx)))
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

// attentionForwardMM is kernels.AttentionForward computed with matmuls.
//
//	out (B, T, NH, HS) written; lse (B, NH, T) written
//	q (B, T, NH, HS), k, v (B, T, NKV, HS), valid (B, T) or nil
func attentionForwardMM(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getAttnScratch(T, HS)
		defer attnPool.Put(sc)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			gatherHead(sc.kh, k, b, kh, T, NKV, HS)
			gatherHead(sc.vh, v, b, kh, T, NKV, HS)
			transpose(sc.vt, sc.vh, T, HS)
			for h := kh * g; h < (kh+1)*g; h++ {
				gatherHead(sc.qh, q, b, h, T, NH, HS)
				kernels.MatmulForward(sc.s, sc.qh, sc.kh, nil, T, HS, T)
				attnProbs(sc.s, valid, b, T, scale, nil, lse[(b*NH+h)*T:(b*NH+h+1)*T])
				kernels.MatmulForward(sc.oh, sc.s, sc.vt, nil, T, T, HS)
				for t := range T {
					o := ((b*T+t)*NH + h) * HS
					copy(out[o:o+HS], sc.oh[t*HS:(t+1)*HS])
				}
			}
		}
	})
}

// attentionBackwardMM is kernels.AttentionBackward computed with matmuls;
// dq, dk, dv are accumulated (+=).
func attentionBackwardMM(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getAttnScratch(T, HS)
		defer attnPool.Put(sc)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			gatherHead(sc.kh, k, b, kh, T, NKV, HS)
			gatherHead(sc.vh, v, b, kh, T, NKV, HS)
			clear(sc.dkh)
			clear(sc.dvh)
			for h := kh * g; h < (kh+1)*g; h++ {
				gatherHead(sc.qh, q, b, h, T, NH, HS)
				gatherHead(sc.doh, dout, b, h, T, NH, HS)
				gatherHead(sc.oh, out, b, h, T, NH, HS)
				kernels.MatmulForward(sc.s, sc.qh, sc.kh, nil, T, HS, T)
				attnProbs(sc.s, valid, b, T, scale, lse[(b*NH+h)*T:(b*NH+h+1)*T], nil)
				kernels.MatmulForward(sc.dp, sc.doh, sc.vh, nil, T, HS, T)
				for t := range T {
					var d float32
					do, o := sc.doh[t*HS:(t+1)*HS], sc.oh[t*HS:(t+1)*HS]
					for i := range do {
						d += do[i] * o[i]
					}
					p, dp := sc.s[t*T:(t+1)*T], sc.dp[t*T:(t+1)*T]
					for u := range dp {
						dp[u] = p[u] * (dp[u] - d) * scale
					}
				}
				clear(sc.dqh)
				kernels.MatmulBackward(sc.dqh, sc.dkh, nil, sc.dp, sc.qh, sc.kh, T, HS, T)
				kernels.MatmulBackward(nil, sc.dvh, nil, sc.s, sc.doh, sc.vh, T, HS, T)
				addHead(dq, sc.dqh, b, h, T, NH, HS)
			}
			addHead(dk, sc.dkh, b, kh, T, NKV, HS)
			addHead(dv, sc.dvh, b, kh, T, NKV, HS)
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
