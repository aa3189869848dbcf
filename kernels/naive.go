package kernels

import "math"

// real is the element type of the naive forwards: float32 to check the fast
// kernels, float64 for the finite-difference gradient checks.
type real interface{ ~float32 | ~float64 }

// Naive reference twins of every kernel: plain loops, one goroutine, no
// blocking. They are the specification the fast kernels are tested against
// (STYLE.md rule 1) and are not called outside tests.

func naiveMatmulForward[F real](out, inp, weight, bias []F, B, C, OC int) {
	for b := 0; b < B; b++ {
		for o := 0; o < OC; o++ {
			var s F
			if bias != nil {
				s = bias[o]
			}
			for c := 0; c < C; c++ {
				s += F(inp[b*C+c] * weight[o*C+c]) // float64 in the gradient checks
			}
			out[b*OC+o] = s
		}
	}
}

// naiveMatmulForwardBI is MatmulForwardBI's specification on the unpacked
// weight (OC, C): one float32 FMA chain per element, k in order.
func naiveMatmulForwardBI(out, inp, weight, bias []float32, B, C, OC int) {
	for b := 0; b < B; b++ {
		for o := 0; o < OC; o++ {
			var s float32
			if bias != nil {
				s = bias[o]
			}
			for c := 0; c < C; c++ {
				s = fma32(inp[b*C+c], weight[o*C+c], s)
			}
			out[b*OC+o] = s
		}
	}
}

func naiveMatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	for b := 0; b < B; b++ {
		for o := 0; o < OC; o++ {
			d := dout[b*OC+o]
			if dbias != nil {
				dbias[o] += d
			}
			for c := 0; c < C; c++ {
				if dinp != nil {
					dinp[b*C+c] = fma32(d, weight[o*C+c], dinp[b*C+c])
				}
				if dweight != nil {
					dweight[o*C+c] = fma32(d, inp[b*C+c], dweight[o*C+c])
				}
			}
		}
	}
}

func naiveEmbeddingForward[F real](out, wte []F, tokens []int32, N, C int) {
	for n := 0; n < N; n++ {
		copy(out[n*C:(n+1)*C], wte[int(tokens[n])*C:(int(tokens[n])+1)*C])
	}
}

func naiveEmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		for c := 0; c < C; c++ {
			dwte[t*C+c] += dout[n*C+c]
		}
	}
}

func naiveRMSNormForward[F real](out, rstd, inp, weight []F, N, C int, eps float32) {
	for n := 0; n < N; n++ {
		x := inp[n*C : (n+1)*C]
		var ss F
		for _, xi := range x {
			ss += xi * xi
		}
		r := 1 / F(math.Sqrt(float64(ss/F(C)+F(eps))))
		rstd[n] = r
		for c := range x {
			out[n*C+c] = x[c] * r * weight[c]
		}
	}
}

func naiveRMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	for n := 0; n < N; n++ {
		r := rstd[n]
		var dot float32
		for c := 0; c < C; c++ {
			dot += dout[n*C+c] * weight[c] * inp[n*C+c] * r
		}
		dot /= float32(C)
		for c := 0; c < C; c++ {
			xhat := inp[n*C+c] * r
			if dweight != nil {
				dweight[c] += dout[n*C+c] * xhat
			}
			dinp[n*C+c] += r * (dout[n*C+c]*weight[c] - xhat*dot)
		}
	}
}

func naiveRopeForward[F real](out, inp []F, pos []int32, N, NH, HS int, theta float32) {
	half := HS / 2
	for n := 0; n < N; n++ {
		for h := 0; h < NH; h++ {
			base := (n*NH + h) * HS
			for i := 0; i < half; i++ {
				c32, s32 := ropeAngle(pos[n], i, HS, theta)
				cs, sn := F(c32), F(s32)
				x1, x2 := inp[base+i], inp[base+i+half]
				out[base+i] = x1*cs - x2*sn
				out[base+i+half] = x2*cs + x1*sn
			}
		}
	}
}

func naiveRopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	half := HS / 2
	for n := 0; n < N; n++ {
		for h := 0; h < NH; h++ {
			base := (n*NH + h) * HS
			for i := 0; i < half; i++ {
				cs, sn := ropeAngle(pos[n], i, HS, theta)
				d1, d2 := dout[base+i], dout[base+i+half]
				dinp[base+i] += d1*cs + d2*sn
				dinp[base+i+half] += d2*cs - d1*sn
			}
		}
	}
}

// naiveAttention computes, with full (T,T) score matrices, the output and
// lse of AttentionForward.
func naiveAttentionForward[F real](out, lse, q, k, v []F, valid []bool, B, T, NH, NKV, HS int) {
	scale := F(1 / math.Sqrt(float64(HS)))
	g := NH / NKV
	row := make([]F, T)
	for b := 0; b < B; b++ {
		for h := 0; h < NH; h++ {
			kh := h / g
			for t := 0; t < T; t++ {
				o := out[((b*T+t)*NH+h)*HS : ((b*T+t)*NH+h+1)*HS]
				for i := range o {
					o[i] = 0
				}
				if valid != nil && !valid[b*T+t] {
					lse[(b*NH+h)*T+t] = 0
					continue
				}
				qv := q[((b*T+t)*NH+h)*HS:]
				mx := F(math.Inf(-1))
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*T+s] {
						continue
					}
					kv := k[((b*T+s)*NKV+kh)*HS:]
					var d F
					for i := 0; i < HS; i++ {
						d += qv[i] * kv[i]
					}
					row[s] = d * scale
					mx = max(mx, row[s])
				}
				var sum F
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*T+s] {
						continue
					}
					row[s] = F(math.Exp(float64(row[s] - mx)))
					sum += row[s]
				}
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*T+s] {
						continue
					}
					p := row[s] / sum
					vv := v[((b*T+s)*NKV+kh)*HS:]
					for i := 0; i < HS; i++ {
						o[i] += p * vv[i]
					}
				}
				lse[(b*NH+h)*T+t] = mx + F(math.Log(float64(sum)))
			}
		}
	}
}

// naiveAttentionBackward is the textbook softmax backward through the
// recomputed probability matrix.
func naiveAttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	scale := float32(1 / math.Sqrt(float64(HS)))
	g := NH / NKV
	p := make([]float32, T)
	dp := make([]float32, T)
	for b := 0; b < B; b++ {
		for h := 0; h < NH; h++ {
			kh := h / g
			for t := 0; t < T; t++ {
				if valid != nil && !valid[b*T+t] {
					continue
				}
				qi := ((b*T+t)*NH + h) * HS
				l := lse[(b*NH+h)*T+t]
				var dsum float32
				for s := 0; s <= t; s++ {
					p[s], dp[s] = 0, 0
					if valid != nil && !valid[b*T+s] {
						continue
					}
					ki := ((b*T+s)*NKV + kh) * HS
					var d, e float32
					for i := 0; i < HS; i++ {
						d += q[qi+i] * k[ki+i]
						e += dout[qi+i] * v[ki+i]
					}
					p[s] = float32(math.Exp(float64(d*scale - l)))
					dp[s] = e
					dsum += p[s] * e
				}
				for s := 0; s <= t; s++ {
					if valid != nil && !valid[b*T+s] {
						continue
					}
					ki := ((b*T+s)*NKV + kh) * HS
					ds := p[s] * (dp[s] - dsum) * scale
					for i := 0; i < HS; i++ {
						dq[qi+i] += ds * k[ki+i]
						dk[ki+i] += ds * q[qi+i]
						dv[ki+i] += p[s] * dout[qi+i]
					}
				}
			}
		}
	}
}

func naiveSwiGLUForward[F real](out, gate, up []F, N int) {
	for i := 0; i < N; i++ {
		g := float64(gate[i])
		out[i] = F(g/(1+math.Exp(-g))) * up[i]
	}
}

func naiveSwiGLUBackward(dgate, dup, dout, gate, up []float32, N int) {
	for i := 0; i < N; i++ {
		g := float64(gate[i])
		sg := 1 / (1 + math.Exp(-g))
		dgate[i] += dout[i] * up[i] * float32(sg*(1+g*(1-sg)))
		dup[i] += dout[i] * float32(g*sg)
	}
}

// naiveLSE returns log Σ exp(row/temp) in float64.
func naiveLSE[F real](row []F, temp float32) float64 {
	mx := math.Inf(-1)
	for _, x := range row {
		mx = math.Max(mx, float64(x)/float64(temp))
	}
	var s float64
	for _, x := range row {
		s += math.Exp(float64(x)/float64(temp) - mx)
	}
	return mx + math.Log(s)
}

func naiveLogProbsForward[F real](logp, lse, logits []F, targets []int32, N, V int, temp float32) {
	for n := 0; n < N; n++ {
		row := logits[n*V : (n+1)*V]
		l := naiveLSE(row, temp)
		lse[n] = F(l)
		logp[n] = 0
		if targets[n] >= 0 {
			logp[n] = F(float64(row[targets[n]])/float64(temp) - l)
		}
	}
}

// naiveCrossEntropy returns the mean of -logp over rows with a target.
func naiveCrossEntropy[F real](logits []F, targets []int32, N, V int) float64 {
	var sum float64
	count := 0
	for n := 0; n < N; n++ {
		if targets[n] < 0 {
			continue
		}
		row := logits[n*V : (n+1)*V]
		sum += naiveLSE(row, 1) - float64(row[targets[n]])
		count++
	}
	if count == 0 {
		return 0
	}
	return sum / float64(count)
}

func naiveEntropyForward[F real](ent, lse, logits []F, N, V int, temp float32) {
	for n := 0; n < N; n++ {
		row := logits[n*V : (n+1)*V]
		l := naiveLSE(row, temp)
		lse[n] = F(l)
		var h float64
		for _, x := range row {
			lp := float64(x)/float64(temp) - l
			h -= math.Exp(lp) * lp
		}
		ent[n] = F(h)
	}
}

func naiveSoftmax(probs, logits []float32, N, V int, temp float32) {
	for n := 0; n < N; n++ {
		row := logits[n*V : (n+1)*V]
		l := naiveLSE(row, temp)
		for v, x := range row {
			probs[n*V+v] = float32(math.Exp(float64(x)/float64(temp) - l))
		}
	}
}

func naiveAdamW(params, m, v, grads []float32, N int, cfg AdamWConfig, t int) {
	bc1 := 1 - math.Pow(float64(cfg.Beta1), float64(t))
	bc2 := 1 - math.Pow(float64(cfg.Beta2), float64(t))
	for i := 0; i < N; i++ {
		g := float64(grads[i])
		mi := float64(cfg.Beta1)*float64(m[i]) + (1-float64(cfg.Beta1))*g
		vi := float64(cfg.Beta2)*float64(v[i]) + (1-float64(cfg.Beta2))*g*g
		p := float64(params[i])
		p -= float64(cfg.LR) * float64(cfg.WeightDecay) * p
		p -= float64(cfg.LR) / bc1 * mi / (math.Sqrt(vi)/math.Sqrt(bc2) + float64(cfg.Eps))
		m[i], v[i], params[i] = float32(mi), float32(vi), float32(p)
	}
}

// naiveMatmulBF16 is MatmulForwardBF16's specification on the unpacked
// weight (OC, C): inputs and weights rounded with BF16, then per pair of
// k the odd product and the even one added with one rounding each,
// subnormals flushed (bf16Step).
func naiveMatmulBF16(out, inp, weight, bias []float32, B, C, OC int) {
	r := func(x float32) float32 { return BF16Float(BF16(x)) }
	for b := 0; b < B; b++ {
		for o := 0; o < OC; o++ {
			var s float32
			if bias != nil {
				s = bias[o]
			}
			for c := 0; c < C; c += 2 {
				if c+1 < C {
					s = bf16Step(s, r(inp[b*C+c+1]), r(weight[o*C+c+1]))
				} else {
					s = bf16Step(s, 0, 0)
				}
				s = bf16Step(s, r(inp[b*C+c]), r(weight[o*C+c]))
			}
			out[b*OC+o] = s
		}
	}
}

// naiveMatmulBackwardBF16 is MatmulBackwardBF16's specification: each
// product is naiveMatmulBF16's chain on explicit transposes, started from
// the gradient's own value; dbias is naiveMatmulBackward's.
func naiveMatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	tr := func(a []float32, R, K int) []float32 { // (R, K) → (K, R)
		t := make([]float32, R*K)
		for r := range R {
			for k := range K {
				t[k*R+r] = a[r*K+k]
			}
		}
		return t
	}
	if dbias != nil {
		for b := range B {
			for o := range OC {
				dbias[o] += dout[b*OC+o]
			}
		}
	}
	if dinp != nil {
		naiveMatmulBF16Acc(dinp, dout, tr(weight, OC, C), B, OC, C)
	}
	if dweight != nil {
		naiveMatmulBF16Acc(dweight, tr(dout, B, OC), tr(inp, B, C), OC, B, C)
	}
}

// naiveMatmulBF16Acc is naiveMatmulBF16 without bias whose chains start
// from out's values.
func naiveMatmulBF16Acc(out, inp, weight []float32, B, C, OC int) {
	r := func(x float32) float32 { return BF16Float(BF16(x)) }
	for b := 0; b < B; b++ {
		for o := 0; o < OC; o++ {
			s := out[b*OC+o]
			for c := 0; c < C; c += 2 {
				if c+1 < C {
					s = bf16Step(s, r(inp[b*C+c+1]), r(weight[o*C+c+1]))
				} else {
					s = bf16Step(s, 0, 0)
				}
				s = bf16Step(s, r(inp[b*C+c]), r(weight[o*C+c]))
			}
			out[b*OC+o] = s
		}
	}
}
