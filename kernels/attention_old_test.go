package kernels

import "math"

// The attention kernels as they were before causal block skipping and the
// vectorized probabilities (issue 16), kept as the twins that the new
// ones must equal bit for bit (TestAttentionBlocksMatchFullT).

// attentionForwardFullT is the forward before causal block skipping (issue
// 16): S and O over all T keys. The naive twin of attentionForwardBI.
func attentionForwardFullT(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	checkGQA(NH, NKV, HS)
	g := NH / NKV
	scale := attnScale(HS)
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getAttnBIScratch(g, T, HS)
		defer attnBIPool.Put(sc)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			h0 := kh * g
			for t := range T {
				ko := ((b*T+t)*NKV + kh) * HS
				copy(sc.kh[t*HS:(t+1)*HS], k[ko:ko+HS])
				copy(sc.vh[t*HS:(t+1)*HS], v[ko:ko+HS])
				for j := range g {
					qo := ((b*T+t)*NH + h0 + j) * HS
					copy(sc.qh[(j*T+t)*HS:(j*T+t+1)*HS], q[qo:qo+HS])
				}
			}
			PackWeight(&sc.pk, sc.kh, T, HS)  // keys as the weight's rows
			PackWeightT(&sc.pv, sc.vh, T, HS) // values as the weight's columns
			biGemmSerial(sc.s, sc.qh, &sc.pk, g*T)
			for j := range g {
				h := h0 + j
				for t := range T {
					row := sc.s[(j*T+t)*T : (j*T+t+1)*T]
					if valid != nil && !valid[b*T+t] {
						clear(row)
						lse[(b*NH+h)*T+t] = 0
						continue
					}
					ok := make([]bool, T)
					for u := range ok {
						ok[u] = u <= t && (valid == nil || valid[b*T+u])
					}
					lse[(b*NH+h)*T+t] = attnProbsBI(row, ok, scale)
				}
			}
			biGemmSerial(sc.oh, sc.s, &sc.pv, g*T)
			for t := range T {
				for j := range g {
					qo := ((b*T+t)*NH + h0 + j) * HS
					copy(out[qo:qo+HS], sc.oh[(j*T+t)*HS:(j*T+t+1)*HS])
				}
			}
		}
	})
}

// attnBackwardGEMMFullT is attnBackwardGEMM before causal block skipping
// (issue 16): every product over all T×T. Parallel
// over (b, kv head) so that one goroutine owns dk, dv of its head and dq of
// the NH/NKV query heads of the group, visited in ascending order.
func attnBackwardGEMMFullT(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
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
