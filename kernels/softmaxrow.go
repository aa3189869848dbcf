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

// SoftmaxWeights writes w[v] = exp(z[v] − max z) for z = float32(row[v]·inv)
// (goExp, float64) and returns their sum in v order: the sampler's
// unnormalised probabilities, with the bits the loss head's softmax has.
func SoftmaxWeights(w []float64, row []float32, inv float32) float64 {
	_, s, _ := softmaxRow(row, inv, nil, w[:len(row)], false)
	return s
}
