package kernels

import (
	"fmt"
	"math"
)

// Causal self-attention with grouped-query heads. Nothing of size (T,T) is
// kept between forward and backward: the forward saves the log-sum-exp of
// each score row and the backward recomputes the probabilities from it (as
// flash-attention does), so saved memory stays O(B·NH·T). With OpenBLAS,
// sequences of attnGEMMMinT tokens or more go through attention_blas.go
// (per-head matrix products in a per-goroutine (T,T) scratch); the scalar
// loops here are the path without BLAS and for the KV-cache decode.

func checkGQA(NH, NKV, HS int) {
	if NKV <= 0 || NH%NKV != 0 || HS <= 0 {
		panic(fmt.Sprintf("kernels: attention: NH=%d must be a positive multiple of NKV=%d, HS=%d > 0", NH, NKV, HS))
	}
}

func attentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	if attnUseGEMM(T) {
		attnForwardGEMM(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
		return
	}
	attnForward(out, lse, q, k, v, valid, B, T, T, 0, NH, NKV, HS)
}

func attentionForwardKV(out, q, kc, vc []float32, valid []bool, B, Tq, Tmax, start, NH, NKV, HS int) {
	if start < 0 || start+Tq > Tmax {
		panic(fmt.Sprintf("kernels: attention: queries %d..%d outside the cache of %d", start, start+Tq, Tmax))
	}
	attnForward(out, nil, q, kc, vc, valid, B, Tq, Tmax, start, NH, NKV, HS)
}

// attnForward handles both the training forward (Tq = Tmax, start = 0) and
// the KV-cache one. lse is (B, NH, Tq) or nil. Parallel over (b, h): each
// output row belongs to one goroutine.
func attnForward(out, lse, q, k, v []float32, valid []bool, B, Tq, Tmax, start, NH, NKV, HS int) {
	checkGQA(NH, NKV, HS)
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NH, 1, func(lo, hi int) {
		row := make([]float32, Tmax)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			kh := h / g
			for i := 0; i < Tq; i++ {
				t := start + i // absolute position of the query
				qo := ((b*Tq+i)*NH + h) * HS
				o := out[qo : qo+HS]
				clear(o)
				if valid != nil && !valid[b*Tmax+t] {
					if lse != nil {
						lse[(b*NH+h)*Tq+i] = 0
					}
					continue
				}
				qv := q[qo : qo+HS]
				mx := float32(math.Inf(-1))
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*Tmax+s] {
						continue
					}
					ko := ((b*Tmax+s)*NKV + kh) * HS
					x := dot(qv, k[ko:ko+HS]) * scale
					row[s] = x
					mx = max(mx, x)
				}
				var sum float32
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*Tmax+s] {
						continue
					}
					e := expf(row[s] - mx)
					row[s] = e
					sum += e
				}
				inv := 1 / sum
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*Tmax+s] {
						continue
					}
					vo := ((b*Tmax+s)*NKV + kh) * HS
					axpy(o, row[s]*inv, v[vo:vo+HS])
				}
				if lse != nil {
					lse[(b*NH+h)*Tq+i] = mx + float32(math.Log(float64(sum)))
				}
			}
		}
	})
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
