package kernels

import (
	"fmt"
	"math"
)

// Causal self-attention with grouped-query heads: the backward (the
// forward is attention_bi.go's, batch-invariant). Nothing of size (T,T) is
// kept between forward and backward: the forward saves the log-sum-exp of
// each score row and the backward recomputes the probabilities from it (as
// flash-attention does), so saved memory stays O(B·NH·T). Sequences of
// attnGEMMMinT tokens or more go through attention_gemm.go (per-head
// matrix products in a per-goroutine (T,T) scratch); the scalar loops here
// do the short ones.

func checkGQA(NH, NKV, HS int) {
	if NKV <= 0 || NH%NKV != 0 || HS <= 0 {
		panic(fmt.Sprintf("kernels: attention: NH=%d must be a positive multiple of NKV=%d, HS=%d > 0", NH, NKV, HS))
	}
}

// attentionBackward is parallel over (b, kv head): one goroutine owns dk and
// dv of that head and dq of its NH/NKV query heads, and walks query heads,
// queries and keys in ascending order, so the sums are deterministic.
//
// With P = exp(S - lse), dP = dout·vᵀ and Dᵢ = Σⱼ Pᵢⱼ dPᵢⱼ = doutᵢ·outᵢ:
// dS = P ∘ (dP - D), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dout.
func attentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	if attnUseGEMM(T) {
		attnBackwardGEMM(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
		return
	}
	attnBackwardLoops(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

// attnBackwardLoops is the scalar backward (no BLAS, or short sequences).
func attnBackwardLoops(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	checkGQA(NH, NKV, HS)
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NKV, 1, func(lo, hi int) {
		p := make([]float32, T)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			for h := kh * g; h < (kh+1)*g; h++ {
				for t := 0; t < T; t++ {
					if valid != nil && !valid[b*T+t] {
						continue
					}
					qo := ((b*T+t)*NH + h) * HS
					qv := q[qo : qo+HS]
					do := dout[qo : qo+HS]
					dqv := dq[qo : qo+HS]
					l := lse[(b*NH+h)*T+t]
					D := dot(do, out[qo:qo+HS])
					for s := 0; s <= t; s++ {
						if valid != nil && !valid[b*T+s] {
							continue
						}
						ko := ((b*T+s)*NKV + kh) * HS
						p[s] = expf(dot(qv, k[ko:ko+HS])*scale - l)
					}
					for s := 0; s <= t; s++ {
						if valid != nil && !valid[b*T+s] {
							continue
						}
						ko := ((b*T+s)*NKV + kh) * HS
						dp := dot(do, v[ko:ko+HS])
						ds := p[s] * (dp - D) * scale
						axpy(dqv, ds, k[ko:ko+HS])
						axpy(dk[ko:ko+HS], ds, qv)
						axpy(dv[ko:ko+HS], p[s], do)
					}
				}
			}
		}
	})
}
