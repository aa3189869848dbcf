package loss

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var allAggs = []Agg{TokenMean, SeqMeanTokenMean, SeqMeanTokenSum, SeqMeanTokenSumNorm}

// randBatch builds a batch of n sequences of 0..maxLen tokens with about
// 20% of tokens masked out. Log-ratios d = logπ_θ − logπ_old are drawn by
// drawD and reference gaps by drawRef; entropies in [0, 3).
func randBatch(r *rand.Rand, n, maxLen int, drawD, drawRef func() float64) *Batch {
	b := &Batch{Offsets: []int{0}}
	for i := 0; i < n; i++ {
		b.Adv = append(b.Adv, float32(r.NormFloat64()))
		l := r.IntN(maxLen + 1)
		for range l {
			old := -0.1 - 4*r.Float64()
			logp := float32(old + drawD())
			b.OldLogP = append(b.OldLogP, float32(old))
			b.LogP = append(b.LogP, logp)
			b.RefLogP = append(b.RefLogP, float32(float64(logp)-drawRef()))
			b.Entropy = append(b.Entropy, float32(3*r.Float64()))
			m := float32(1)
			if r.Float64() < 0.2 {
				m = 0
			}
			b.Mask = append(b.Mask, m)
		}
		b.Offsets = append(b.Offsets, len(b.LogP))
	}
	return b
}

// TestFiniteDifference checks ∂loss/∂logπ_θ and ∂loss/∂H against central
// differences on random batches, for every aggregation mode and KL type,
// with clip-higher and dual clip on. Draws near a kink (clip bounds, the
// dual-clip constant, k3's clamp at 10) are redrawn, since there the two
// one-sided derivatives differ and a central difference measures neither.
func TestFiniteDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := Config{ClipLow: 0.2, ClipHigh: 0.28, ClipC: 1.5, NormLen: 16, KLCoef: 0.3, EntropyCoef: 0.05}
	awayFrom := func(x float64, kinks ...float64) bool {
		for _, k := range kinks {
			if math.Abs(x-k) < 0.02 {
				return false
			}
		}
		return true
	}
	drawD := func() float64 {
		if r.Float64() < 0.05 { // some tokens beyond the ±20 log-ratio clamp
			return math.Copysign(21+r.Float64(), r.Float64()-0.5)
		}
		for {
			d := 1.2 * (r.Float64() - 0.5) // ρ in [0.55, 1.82]: inside, below, above, dual
			if rho := math.Exp(d); awayFrom(rho, 1-base.ClipLow, 1+base.ClipHigh, base.ClipC) {
				return d
			}
		}
	}
	drawRef := func() float64 {
		for {
			d := -3.5 + 16*r.Float64() // covers k3's clamped ends
			if x := -d; awayFrom(math.Exp(x)-x-1, 10) {
				return d
			}
		}
	}
	var seen Stats // over all cases: the draws must reach every regime
	for _, agg := range allAggs {
		for _, kl := range []KLType{K1, K2, K3} {
			t.Run(fmt.Sprintf("%s/%s", agg, kl), func(t *testing.T) {
				cfg := base
				cfg.Agg, cfg.KLType = agg, kl
				b := randBatch(r, 6, 9, drawD, drawRef)
				T := b.NumTokens()
				g := Grads{LogP: make([]float32, T), Entropy: make([]float32, T)}
				st, err := Compute(g, b, &cfg, Norm{})
				if err != nil {
					t.Fatal(err)
				}
				seen.Add(st)
				lossAt := func() float64 {
					st, err := Compute(Grads{}, b, &cfg, Norm{})
					if err != nil {
						t.Fatal(err)
					}
					return st.Loss
				}
				fd := func(x *float32) float64 {
					x0 := *x
					const h = 1e-3
					hi, lo := float32(float64(x0)+h), float32(float64(x0)-h)
					*x = hi
					lp := lossAt()
					*x = lo
					lm := lossAt()
					*x = x0
					return (lp - lm) / (float64(hi) - float64(lo))
				}
				for tok := 0; tok < T; tok++ {
					if got, want := float64(g.LogP[tok]), fd(&b.LogP[tok]); !near(got, want, 1e-6, 1e-3) {
						t.Errorf("dlogp[%d] = %.8g, finite difference %.8g", tok, got, want)
					}
					if got, want := float64(g.Entropy[tok]), fd(&b.Entropy[tok]); !near(got, want, 1e-6, 1e-3) {
						t.Errorf("dH[%d] = %.8g, finite difference %.8g", tok, got, want)
					}
				}
			})
		}
	}
	if seen.Clipped == 0 || seen.DualClipped == 0 || seen.MaxAbsLogR <= 20 {
		t.Errorf("random draws missed a regime: clipped %d, dual-clipped %d, max |log ρ| %g (want > 20)",
			seen.Clipped, seen.DualClipped, seen.MaxAbsLogR)
	}
}

// TestOnPolicyIsReinforce: with logπ_θ == logπ_old (ρ = 1, the first
// minibatch of an on-policy update) every clip is inactive and the gradient
// is plain REINFORCE, −A·w_t, whatever the clip settings. The weights w_t
// are written out here from the Agg table, independently of Weights.
func TestOnPolicyIsReinforce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zero := func() float64 { return 0 }
	b := randBatch(r, 7, 6, zero, zero)
	b.Offsets = append(b.Offsets, b.Offsets[len(b.Offsets)-1]) // plus an empty sequence
	b.Adv = append(b.Adv, 0.7)
	const L = 12
	wantW := func(agg Agg) []float64 {
		tokens, seqs := 0.0, 0.0
		for i := 0; i+1 < len(b.Offsets); i++ {
			n := 0.0
			for t := b.Offsets[i]; t < b.Offsets[i+1]; t++ {
				n += float64(b.Mask[t])
			}
			tokens += n
			if n > 0 {
				seqs++
			}
		}
		w := make([]float64, b.NumTokens())
		for i := 0; i+1 < len(b.Offsets); i++ {
			n := 0.0
			for t := b.Offsets[i]; t < b.Offsets[i+1]; t++ {
				n += float64(b.Mask[t])
			}
			for t := b.Offsets[i]; t < b.Offsets[i+1]; t++ {
				m := float64(b.Mask[t])
				switch agg {
				case TokenMean:
					w[t] = m / tokens
				case SeqMeanTokenMean:
					if n > 0 { // a fully masked sequence has no weight
						w[t] = m / (n * seqs)
					}
				case SeqMeanTokenSum:
					w[t] = m / seqs
				case SeqMeanTokenSumNorm:
					w[t] = m / L
				}
			}
		}
		return w
	}
	clips := map[string]Config{
		"default":    {ClipLow: 0.2, ClipHigh: 0.2},
		"dapo":       {ClipLow: 0.2, ClipHigh: 0.28, ClipC: 3},
		"zero-width": {ClipLow: 0, ClipHigh: 0, ClipC: 1.0001},
	}
	for cname, clip := range clips {
		for _, agg := range allAggs {
			t.Run(cname+"/"+string(agg), func(t *testing.T) {
				cfg := clip
				cfg.Agg, cfg.NormLen, cfg.KLType = agg, L, K2 // KL and entropy present, coefficients 0
				st, g, _ := compute(t, b, cfg, Norm{})
				w := wantW(agg)
				want := make([]float64, len(w))
				for i := 0; i+1 < len(b.Offsets); i++ {
					for tok := b.Offsets[i]; tok < b.Offsets[i+1]; tok++ {
						want[tok] = -float64(b.Adv[i]) * w[tok]
					}
				}
				checkVec(t, "dlogp", g, want)
				if st.Clipped != 0 || st.DualClipped != 0 || st.MaxAbsLogR != 0 || st.NegLogRatio != 0 {
					t.Errorf("on-policy stats: clipped %d, dual %d, max|log ρ| %g, Σ−log ρ %g; want all 0",
						st.Clipped, st.DualClipped, st.MaxAbsLogR, st.NegLogRatio)
				}
			})
		}
	}
}

// sub returns the sequences [i0, i1) of b as a batch of their own.
func sub(b *Batch, i0, i1 int) *Batch {
	t0, t1 := b.Offsets[i0], b.Offsets[i1]
	s := &Batch{Adv: b.Adv[i0:i1], LogP: b.LogP[t0:t1], OldLogP: b.OldLogP[t0:t1],
		RefLogP: b.RefLogP[t0:t1], Entropy: b.Entropy[t0:t1], Mask: b.Mask[t0:t1]}
	for i := i0; i <= i1; i++ {
		s.Offsets = append(s.Offsets, b.Offsets[i]-t0)
	}
	return s
}

// TestMinibatches: split a batch into micro-batches. Under GlobalNorm the
// losses and gradients add up to the full-batch ones in every mode, and the
// Stats add up to the full-batch Stats. Under verl's MicroBatchNorm they do
// for the seq-mean modes when the micro-batches hold equal numbers of
// sequences, and not for token-mean when their token counts differ, nor for
// seq-mean-token-sum-norm, which it scales down by the share.
func TestMinibatches(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	drawD := func() float64 { return 0.8 * (r.Float64() - 0.5) }
	drawRef := func() float64 { return r.NormFloat64() }
	var b *Batch
	for { // 9 sequences, none empty (so equal sequence counts are equal non-empty counts), unequal token counts
		b = randBatch(r, 9, 8, drawD, drawRef)
		ok := true
		for i := 0; i < 9; i++ {
			if n, _ := counts(b.Offsets[i:i+2], b.Mask); n == 0 || b.Offsets[i+1]-b.Offsets[i] == 0 {
				ok = false
			}
		}
		t1, _ := counts(b.Offsets[0:4], b.Mask)
		t2, _ := counts(b.Offsets[3:7], b.Mask)
		if ok && t1 != t2 {
			break
		}
	}
	parts := []*Batch{sub(b, 0, 3), sub(b, 3, 6), sub(b, 6, 9)}
	global, err := GlobalNorm(parts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, agg := range allAggs {
		t.Run(string(agg), func(t *testing.T) {
			cfg := Config{ClipLow: 0.2, ClipHigh: 0.28, ClipC: 3, Agg: agg, NormLen: 10, KLType: K3, KLCoef: 0.2, EntropyCoef: 0.01}
			full, fullG, fullH := compute(t, b, cfg, Norm{})
			for _, mode := range []string{"global", "micro"} {
				var sum Stats
				var g, h []float32
				for _, p := range parts {
					n := global
					if mode == "micro" {
						n = MicroBatchNorm(p.NumSeqs(), b.NumSeqs())
					}
					st, pg, ph := compute(t, p, cfg, n)
					sum.Add(st)
					g, h = append(g, pg...), append(h, ph...)
				}
				// verl's rule is exact for the seq-mean modes with equal sequence counts per
				// part; it scales seq-mean-token-sum-norm (already a plain sum) by the share.
				exact := mode == "global" || agg == SeqMeanTokenMean || agg == SeqMeanTokenSum
				same := near(sum.Loss, full.Loss, 1e-9, 1e-9)
				for i := range g {
					same = same && near(float64(g[i]), float64(fullG[i]), 1e-7, 1e-5) && near(float64(h[i]), float64(fullH[i]), 1e-9, 1e-5)
				}
				if same != exact {
					t.Errorf("%s: summed micro-batch loss %.10g vs full %.10g; equal = %v, want %v", mode, sum.Loss, full.Loss, same, exact)
				}
				if mode == "global" {
					fm, sm := full.Metrics(), sum.Metrics()
					for name, want := range fm {
						if !near(sm[name], want, 1e-9, 1e-9) {
							t.Errorf("metric %s: merged %.10g, full %.10g", name, sm[name], want)
						}
					}
					if sum.Tokens != full.Tokens || sum.Seqs != full.Seqs || sum.MaxAbsLogR != full.MaxAbsLogR {
						t.Errorf("merged counts %d/%d/%g, full %d/%d/%g", sum.Tokens, sum.Seqs, sum.MaxAbsLogR, full.Tokens, full.Seqs, full.MaxAbsLogR)
					}
				}
			}
		})
	}
}

// TestWeightsScale: Norm.Scale multiplies every weight; MicroBatchNorm is n/total.
func TestWeightsScale(t *testing.T) {
	if n := MicroBatchNorm(2, 8); n.Scale != 0.25 || n.Tokens != 0 || n.Seqs != 0 {
		t.Errorf("MicroBatchNorm(2, 8) = %+v, want Scale 0.25", n)
	}
	// Two sequences of 2 and 1 tokens, token-mean: w = 1/3 each, times Scale 0.25 = 1/12.
	w := make([]float64, 3)
	if err := Weights(w, []int{0, 2, 3}, nil, TokenMean, 0, Norm{Scale: 0.25}); err != nil {
		t.Fatal(err)
	}
	for i, v := range w {
		if !near(v, 1.0/12, 1e-15, 1e-12) {
			t.Errorf("w[%d] = %g, want 1/12", i, v)
		}
	}
	// Global denominators override the local ones: Tokens = 6 → w = 1/6.
	if err := Weights(w, []int{0, 2, 3}, nil, TokenMean, 0, Norm{Tokens: 6}); err != nil {
		t.Fatal(err)
	}
	if !near(w[0], 1.0/6, 1e-15, 1e-12) {
		t.Errorf("w[0] = %g with Tokens 6, want 1/6", w[0])
	}
}
