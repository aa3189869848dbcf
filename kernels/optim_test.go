package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAdamWStep: the fused update equals Scale +
// AdamWUpdate to |Δ| ≤ 1e-6·(|ref| + |lr|) (it multiplies where
// kernels divides), and leaves the gradient alone unless asked to zero it.
func TestAdamWStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const n = 100_003
	rnd := func(s float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(s * rng.NormFloat64())
		}
		return x
	}
	p, m, v, g := rnd(1), rnd(0.01), rnd(0.001), rnd(1)
	for i := range v {
		v[i] = v[i] * v[i]
	}
	cfg := AdamWConfig{LR: 3e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	for _, sc := range []float32{1, 0.37} {
		pr, mr, vr, gr := slices.Clone(p), slices.Clone(m), slices.Clone(v), slices.Clone(g)
		if sc != 1 {
			Scale(gr, sc)
		}
		AdamWUpdate(pr, mr, vr, gr, n, cfg, 7)
		pf, mf, vf, gf := slices.Clone(p), slices.Clone(m), slices.Clone(v), slices.Clone(g)
		AdamWStep(pf, mf, vf, gf, sc, cfg, 7, false)
		if !slices.Equal(mf, mr) || !slices.Equal(vf, vr) {
			t.Errorf("scale %v: moments differ from AdamWUpdate", sc)
		}
		for i := range pf {
			if d := math.Abs(float64(pf[i] - pr[i])); d > 1e-6*(math.Abs(float64(pr[i]))+3e-3) {
				t.Fatalf("scale %v: p[%d] = %v, AdamWUpdate %v", sc, i, pf[i], pr[i])
			}
		}
		if !slices.Equal(gf, g) {
			t.Errorf("scale %v: gradient modified", sc)
		}
		AdamWStep(pf, mf, vf, gf, sc, cfg, 8, true)
		if slices.ContainsFunc(gf, func(x float32) bool { return x != 0 }) {
			t.Errorf("zero: gradient not cleared")
		}
	}
}
