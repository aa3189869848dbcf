package kernels

import "math"

// softmaxRowGo is the pass over one row of logits that the loss head and
// the sampler share: with z[v] = float32(row[v]·inv) and mx = max_v z[v]
// (Go's max, from −Inf),
//
//	ex[v] = goExp(float64(z[v] − mx))   stored in er (float32) and w (float64) when not nil
//	s     = Σ_v ex[v]                   summed in v order, in float64
//	sz    = Σ_v ex[v]·float64(z[v])     the same, when wantSz
//
// softmaxRow is this, in C for the avx512 and avx2 kernel sets (the same
// bits: TestSoftmaxRowSetsBitIdentical).
func softmaxRowGo(row []float32, inv float32, er []float32, w []float64, wantSz bool) (mx float32, s, sz float64) {
	mx = float32(math.Inf(-1))
	for _, x := range row {
		mx = max(mx, float32(x*inv))
	}
	for v, x := range row {
		z := float32(x * inv)
		ex := goExp(float64(z - mx))
		if er != nil {
			er[v] = float32(ex)
		}
		if w != nil {
			w[v] = ex
		}
		s += ex
		if wantSz {
			sz += float64(ex * float64(z))
		}
	}
	return mx, s, sz
}

// expRowGo writes er[v] = float32(goExp(float64(float32(row[v]·inv) − mx)))
// for a given mx: softmaxRowGo's exponentials without its max and sums,
// the same bits (the head's backward by slices of the vocabulary
// recomputes e from the forward's mx). expRow is this, in C for the
// avx512 and avx2 kernel sets.
func expRowGo(row []float32, inv, mx float32, er []float32) {
	er = er[:len(row)]
	for v, x := range row {
		z := float32(x * inv)
		er[v] = float32(goExp(float64(z - mx)))
	}
}

// SoftmaxWeights writes w[v] = exp(z[v] − mx) for z = float32(row[v]/temp)
// and mx = max z (goExp, float64) and returns their sum s in v order and
// mx: the sampler's unnormalised probabilities, with the bits the loss
// head's softmax has. RowLogProb(row[t], temp, mx, s) is then token t's
// log-probability, LogProbRow's bits without a second pass.
func SoftmaxWeights(w []float64, row []float32, temp float32) (s float64, mx float32) {
	mx, s, _ = softmaxRow(row, 1/temp, nil, w[:len(row)], false)
	return s, mx
}

// RowLogProb is the log-probability of a token whose logit is x, at
// temperature temp, in a row whose softmaxRow gave mx and s: the loss
// head's logp formula, in one place.
func RowLogProb(x, temp, mx float32, s float64) float32 {
	return x/temp - (mx + float32(math.Log(s)))
}
