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

// naiveAdamWStep is adamwStep's twin: one float32 operation per statement, as
// the formula reads (TestAdamWRangeSetsBitIdentical).
func naiveAdamWStep(p, m, v, g []float32, sc float32, cfg AdamWConfig, t int) {
	bc1 := 1 - math.Pow(float64(cfg.Beta1), float64(t))
	bc2 := 1 - math.Pow(float64(cfg.Beta2), float64(t))
	stepSize := float32(float64(cfg.LR) / bc1)
	invBc2 := float32(1 / math.Sqrt(bc2))
	decay := 1 - cfg.LR*cfg.WeightDecay
	for i := range p {
		gi := g[i]
		if sc != 1 {
			gi = gi * sc
		}
		a := cfg.Beta1 * m[i]
		b := (1 - cfg.Beta1) * gi
		m[i] = a + b
		c := cfg.Beta2 * v[i]
		d := (1 - cfg.Beta2) * gi
		d = d * gi
		v[i] = c + d
		s := float32(math.Sqrt(float64(v[i])))
		s = s * invBc2
		den := s + cfg.Eps
		q := stepSize * m[i]
		q = q / den
		pd := p[i] * decay
		p[i] = pd - q
	}
}

// TestAdamWRangeSetsBitIdentical: on every kernel set (the C loops and the
// Go loop) AdamWStep gives the naive twin's bits, for a clipped and an
// unclipped gradient, with zeros, tiny and huge values, at lengths that are
// not a multiple of any vector width.
func TestAdamWRangeSetsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg := AdamWConfig{LR: 3e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	for _, n := range []int{1, 15, 17, 100_003} {
		p, m, v, g := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range p {
			p[i] = float32(rng.NormFloat64())
			m[i] = float32(1e-3 * rng.NormFloat64())
			v[i] = float32(math.Abs(1e-6 * rng.NormFloat64()))
			g[i] = float32(math.Exp(20*rng.NormFloat64()) * rng.NormFloat64())
			switch i % 7 {
			case 1:
				g[i] = 0
			case 3:
				v[i], m[i] = 0, 0
			case 5:
				g[i] = -g[i] * 1e-30
			}
		}
		for _, sc := range []float32{1, 0.37} {
			pr, mr, vr := slices.Clone(p), slices.Clone(m), slices.Clone(v)
			naiveAdamWStep(pr, mr, vr, g, sc, cfg, 3)
			for level := range biDetectedLevel + 1 {
				useSet(t, level)
				pf, mf, vf, gf := slices.Clone(p), slices.Clone(m), slices.Clone(v), slices.Clone(g)
				AdamWStep(pf, mf, vf, gf, sc, cfg, 3, level == 1)
				for i := range pf {
					if math.Float32bits(pf[i]) != math.Float32bits(pr[i]) || math.Float32bits(mf[i]) != math.Float32bits(mr[i]) || math.Float32bits(vf[i]) != math.Float32bits(vr[i]) {
						t.Fatalf("set %s n %d scale %v: element %d (g %v): p,m,v = %v,%v,%v, naive %v,%v,%v",
							KernelSet(), n, sc, i, g[i], pf[i], mf[i], vf[i], pr[i], mr[i], vr[i])
					}
				}
				if level == 1 && slices.ContainsFunc(gf, func(x float32) bool { return x != 0 }) {
					t.Fatalf("set %s: gradient not cleared", KernelSet())
				}
				if level != 1 && !slices.Equal(gf, g) {
					t.Fatalf("set %s: gradient modified", KernelSet())
				}
			}
		}
	}
}

// BenchmarkAdamWStep times the fused update over 16M parameters per
// kernel set (memory-bound at 32 bytes per element read and written).
func BenchmarkAdamWStep(b *testing.B) {
	const n = 1 << 24
	p, m, v, g := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%13) * 1e-3
	}
	cfg := AdamWConfig{LR: 3e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	for level := range biDetectedLevel + 1 {
		b.Run(biLevelName[level], func(b *testing.B) {
			useSet(b, level)
			b.SetBytes(32 * n)
			for b.Loop() {
				AdamWStep(p, m, v, g, 0.5, cfg, 3, false)
			}
		})
	}
}
