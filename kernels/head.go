package kernels

import (
	"math"
)

// The fused loss head (the trainer's): log-probabilities, entropy and
// cross-entropy over the
// (N, V) logits, fused so that each pass over a 50k-wide vocabulary takes
// one exp per logit in total (forward and backward together) instead of
// one per kernel call. The forward keeps e = exp(z − max) in the buffer
// that the backward then overwrites with dlogits.
//
// Reference (what these must equal, and what TestHeadFused compares
// against): LogProbsForward, EntropyForward, CrossEntropyForward and
// their backwards, which they agree with to float rounding (kernels
// sums expf in float64, these math.Exp). The sampler's logprobs use
// logProbRow, which is headForward's logp bit for bit.

// headGrain is the number of rows a goroutine takes at least.
func headGrain(V int) int { return max(1, (1<<15)/V) }

// headForward computes, for each row n of logits (N, V), with z = logits·(1/temp),
// over the first VL ids only (v < VL; the ids past the tokenizer's
// vocabulary, a padded embedding's rows, have probability 0):
//
//	lse[n]  = log Σ_{v<VL} exp(z[n,v])                                written
//	logp[n] = logits[n,t]/temp − lse[n]  (t = targets[n] ≥ 0; else 0)   written
//	ent[n]  = lse[n] − Σ_v p z,  p = softmax(z)   (only when ent != nil) written
//	e[n,v]  = exp(z[n,v] − max_v z[n,v])  (N, V); 0 for v ≥ VL          written
//	r[n]    = 1 / Σ_v e[n,v]                                            written
//
// so that p[n,v] = e[n,v]·r[n].
func headFwd(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	inv := 1 / temp
	parallelFor(N, headGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : n*V+VL]
			er := e[n*V : n*V+VL]
			clear(e[n*V+VL : (n+1)*V])
			mx, s, sz := softmaxRow(row, inv, er, nil, ent != nil)
			l := mx + float32(math.Log(s))
			lse[n] = l
			r[n] = float32(1 / s)
			logp[n] = 0
			if t := targets[n]; t >= 0 {
				logp[n] = row[t]/temp - l
			}
			if ent != nil {
				ent[n] = l - float32(sz/s)
			}
		}
	})
}

// logProbRow is headForward's logp for one row of logits (VL: the
// sampleable ids only) and target t ≥ 0, computed with the same operations in the same order, so the
// sampler's logprob of a token has the bits ForwardLogp gives it.
func logProbRow(row []float32, t int32, temp float32) float32 {
	mx, s, _ := softmaxRow(row, 1/temp, nil, nil, false)
	return RowLogProb(row[t], temp, mx, s)
}

// headBackwardLogp overwrites e (N, V) from headForward with dlogits for
// dlogp (N) and dent (N, or nil):
//
//	dlogits[n,v] = dlogp[n]/temp·(1[v=t] − p) − dent[n]/temp·p·(log p + ent[n])
//
// with log p = z − lse; rows with a negative target take no dlogp. Ids
// v ≥ VL (p = 0) get 0.
func headBwdLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	inv := 1 / temp
	parallelFor(N, headGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			d := e[n*V : (n+1)*V]
			t := targets[n]
			var g, gh float32
			if t >= 0 {
				g = dlogp[n] * inv
			}
			if dent != nil {
				gh = dent[n] * inv
			}
			if g == 0 && gh == 0 {
				clear(d)
				continue
			}
			rn := r[n]
			if gh == 0 {
				for v := range d {
					d[v] = -g * (d[v] * rn)
				}
			} else {
				row := logits[n*V : n*V+VL]
				l, h := lse[n], ent[n]
				for v, x := range row {
					p := d[v] * rn
					d[v] = -g*p - gh*p*(x*inv-l+h)
				}
			}
			if t >= 0 {
				d[t] += g
			}
		}
	})
}

// headBackwardCE overwrites e (N, V) from headForward (temperature 1) with
// the gradient of dloss·mean cross-entropy over the count rows whose
// target is not negative: dlogits[n,v] = dloss/count·(p − 1[v=t]).
func headBwdCE(e, r []float32, dloss float32, targets []int32, count, N, V int) {
	parallelFor(N, headGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			d := e[n*V : (n+1)*V]
			t := targets[n]
			if t < 0 || count == 0 {
				clear(d)
				continue
			}
			g := dloss / float32(count)
			rn := r[n]
			for v := range d {
				d[v] = g * (d[v] * rn)
			}
			d[t] -= g
		}
	})
}
