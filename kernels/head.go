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
//	mx[n]   = max_v z[n,v]                          (only when mx != nil) written
//
// so that p[n,v] = e[n,v]·r[n].
func headFwd(e, r, lse, logp, ent, mx, logits []float32, targets []int32, N, V, VL int, temp float32) {
	inv := 1 / temp
	parallelFor(N, headGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : n*V+VL]
			er := e[n*V : n*V+VL]
			clear(e[n*V+VL : (n+1)*V])
			m, s, sz := softmaxRow(row, inv, er, nil, ent != nil)
			if mx != nil {
				mx[n] = m
			}
			l := m + float32(math.Log(s))
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
			g, gh, l, h := logpRowWeights(n, t, dlogp, dent, lse, ent, inv)
			if g == 0 && gh == 0 {
				clear(d)
				continue
			}
			logpGrad(d, logits[n*V:n*V+VL], r[n], g, gh, inv, l, h)
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
			ceGrad(d, r[n], g)
			d[t] -= g
		}
	})
}

// logpRowWeights are row n's weights in its dlogits: g = dlogp/temp (0
// for an ignored target t < 0), gh = dent/temp (0 without dent), and,
// when gh is not 0, its lse and entropy.
func logpRowWeights(n int, t int32, dlogp, dent, lse, ent []float32, inv float32) (g, gh, l, h float32) {
	if t >= 0 {
		g = dlogp[n] * inv
	}
	if dent != nil {
		gh = dent[n] * inv
	}
	if gh != 0 {
		l, h = lse[n], ent[n]
	}
	return g, gh, l, h
}

// logpGrad turns one row's e (d, from exp(z − max)) into its dlogits
// without the target's term: d[v] = −g·p − gh·p·(x[v]/temp − l + h) over
// the logits x (d's first len(x) ids: the rest, ids ≥ VL, hold e = 0 and
// are left alone), p = d[v]·rn; with gh = 0 every d[v] = −g·p. The row
// forms (headBwdLogp) and the vocabulary-slice forms (headSliceLogp) share
// it, so both give these bits.
func logpGrad(d, x []float32, rn, g, gh, inv, l, h float32) {
	if gh == 0 {
		for v := range d {
			d[v] = -g * (d[v] * rn)
		}
		return
	}
	for v, xv := range x {
		p := d[v] * rn
		d[v] = -g*p - gh*p*(xv*inv-l+h)
	}
}

// ceGrad turns one row's e into g·p, the cross-entropy's dlogits without
// the target's −g.
func ceGrad(d []float32, rn, g float32) {
	for v := range d {
		d[v] = g * (d[v] * rn)
	}
}
