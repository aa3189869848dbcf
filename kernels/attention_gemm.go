package kernels

import "math"

// Attention's backward over a whole sequence is done per head as matrix
// products (flash-attention's math, materialised one head at a time in a
// (T,T) scratch): S = Q·Kᵀ, dP = dO·Vᵀ, dV += Pᵀ·dO, dQ += dS·K,
// dK += dSᵀ·Q, each one serial gemm (gemm.go: an FMA chain per element, k
// in order) inside the goroutine that owns the head. The causal half of S
// is computed and thrown away, which still leaves it several times faster
// than the scalar loops at T >= 64. Masking and the softmax stay in Go
// (float32, expf), exactly as in attention.go. Deterministic and
// ISA-independent: fixed work per goroutine, gemm's fixed order, same
// bytes at any GOMAXPROCS and on every kernel set.

// attnGEMMMinT and attnGEMMMaxT bound the sequence lengths that use the
// GEMM path: below, the scalar loops cost less than the calls; above, the
// per-goroutine scratch (2·T² floats in the backward, 128 MiB at 4096)
// would grow too large.
const (
	attnGEMMMinT = 8
	attnGEMMMaxT = 4096
)

func attnUseGEMM(T int) bool { return T >= attnGEMMMinT && T <= attnGEMMMaxT }

// attnBackwardGEMM is attentionBackward through matrix products, parallel
// over (b, kv head) so that one goroutine owns dk, dv of its head and dq of
// the NH/NKV query heads of the group, visited in ascending order.
func attnBackwardGEMM(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	checkGQA(NH, NKV, HS)
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getScratch(2 * T * T)
		defer putScratch(sc)
		P, dP := sc.buf[:T*T], sc.buf[T*T:]
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			kk := k[(b*T*NKV+kh)*HS:]
			vv := v[(b*T*NKV+kh)*HS:]
			dkk := dk[(b*T*NKV+kh)*HS:]
			dvv := dv[(b*T*NKV+kh)*HS:]
			for h := kh * g; h < (kh+1)*g; h++ {
				qh := q[(b*T*NH+h)*HS:]
				doh := dout[(b*T*NH+h)*HS:]
				// P = exp(scale·Q·Kᵀ - lse), zero where masked
				gemm(false, true, T, T, HS, qh, NH*HS, kk, NKV*HS, false, P, T, false)
				for t := 0; t < T; t++ {
					row := P[t*T : (t+1)*T]
					if valid != nil && !valid[b*T+t] {
						clear(row)
						continue
					}
					l := lse[(b*NH+h)*T+t]
					for s := 0; s <= t; s++ {
						if valid != nil && !valid[b*T+s] {
							row[s] = 0
							continue
						}
						row[s] = expf(row[s]*scale - l)
					}
					clear(row[t+1:])
				}
				// dV_kh += Pᵀ · dO_h
				gemm(true, false, T, HS, T, P, T, doh, NH*HS, true, dvv, NKV*HS, false)
				// dP = dO_h · V_khᵀ;  dS = P ∘ (dP - D) · scale (into P)
				gemm(false, true, T, T, HS, doh, NH*HS, vv, NKV*HS, false, dP, T, false)
				for t := 0; t < T; t++ {
					o := (b*T+t)*NH*HS + h*HS
					D := dot(dout[o:o+HS], out[o:o+HS])
					row, drow := P[t*T:(t+1)*T], dP[t*T:(t+1)*T]
					for s := 0; s <= t; s++ {
						row[s] *= (drow[s] - D) * scale
					}
				}
				// dQ_h += dS · K_kh;  dK_kh += dSᵀ · Q_h
				gemm(false, false, T, HS, T, P, T, kk, NKV*HS, true, dq[(b*T*NH+h)*HS:], NH*HS, false)
				gemm(true, false, T, HS, T, P, T, qh, NH*HS, true, dkk, NKV*HS, false)
			}
		}
	})
}
