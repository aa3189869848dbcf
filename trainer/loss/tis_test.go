package loss

import (
	"math"
	"strings"
	"testing"
)

// TestTISHandComputed: truncated importance sampling (docs/RL.md, "Policy
// loss"): ℓ ← w·ℓ with w = min(exp(logπ_old − logπ_behav), C), C = 2, on
// the PPO term only. Two sequences, token-mean over 3 tokens (agg weight
// 1/3 each), clip 0.2/0.2, a k1 KL to a reference equal to logπ_θ (KL 0,
// ∂KL/∂logπ_θ = 1) with kl_coef 0.1, entropies 1 with entropy_coef 0.01.
//
//	tok  A   old   ρ    exp(old−behav)  w    ℓ                      w·ℓ    ∂ℓ/∂logπ_θ  w·∂ℓ
//	0    1   −1    1    1.5             1.5  −1·1 = −1              −1.5   −1          −1.5
//	1    1   −2    1.1  3 (> C)         2    −1.1                   −2.2   −1.1        −2.2
//	2    −2  −0.5  1.5  0.5             0.5  max(3, 2.4) = 3        1.5    −A·ρ = 3    1.5
//
// pg_loss = (−1.5 − 2.2 + 1.5)/3 = −0.733333…; loss = pg_loss − 0.01·1 + 0.1·0.
// ∂loss/∂logπ_θ = w·∂ℓ/3 + 0.1·1/3 = [−0.5, −0.733333…, 0.5] + 0.0333333…
// ∂loss/∂H = −0.01/3 (no weight).
// tis_weight_mean = (1.5 + 2 + 0.5)/3 = 4/3; tis_clipfrac = 1/3;
// tis_behav_kl = mean(behav − old) = (−ln 1.5 − ln 3 + ln 2)/3 = ln(4/9)/3 = −0.270310072.
func TestTISHandComputed(t *testing.T) {
	old := []float64{-1, -2, -0.5}
	rho := []float64{1, 1.1, 1.5}
	isRatio := []float64{1.5, 3, 0.5}
	b := &Batch{Offsets: []int{0, 2, 3}, Adv: []float32{1, -2}}
	for k := range old {
		lp := logpAt(old[k], rho[k])
		b.LogP = append(b.LogP, lp)
		b.OldLogP = append(b.OldLogP, float32(old[k]))
		b.BehavLogP = append(b.BehavLogP, float32(old[k]-math.Log(isRatio[k])))
		b.RefLogP = append(b.RefLogP, lp)
		b.Entropy = append(b.Entropy, 1)
	}
	cfg := Config{ClipLow: 0.2, ClipHigh: 0.2, Agg: TokenMean, KLCoef: 0.1, KLType: K1, EntropyCoef: 0.01, TISCap: 2}
	st, dlogp, dh := compute(t, b, cfg, Norm{})
	checkScalar(t, "pg_loss", st.PGLoss, -2.2/3)
	checkScalar(t, "loss", st.Loss, -2.2/3-0.01)
	checkScalar(t, "kl_loss", st.KLLoss, 0)
	checkVec(t, "dlogp", dlogp, []float64{-0.5 + 0.1/3, -2.2/3 + 0.1/3, 0.5 + 0.1/3})
	checkVec(t, "dH", dh, []float64{-0.01 / 3, -0.01 / 3, -0.01 / 3})
	m := st.Metrics()
	checkScalar(t, "actor/tis_weight_mean", m["actor/tis_weight_mean"], 4.0/3)
	checkScalar(t, "actor/tis_clipfrac", m["actor/tis_clipfrac"], 1.0/3)
	checkScalar(t, "actor/tis_behav_kl", m["actor/tis_behav_kl"], -0.270310072)
	checkScalar(t, "actor/pg_clipfrac", m["actor/pg_clipfrac"], 0) // computed before the weight, as verl does
	if st.TISCapped != 1 || !st.HasTIS {
		t.Errorf("TISCapped = %d, HasTIS = %v, want 1, true", st.TISCapped, st.HasTIS)
	}

	// Cap 4: token 1 is no longer truncated (w = 3): pg_loss = (−1.5 − 3.3 + 1.5)/3 = −1.1.
	cfg.TISCap = 4
	st, _, _ = compute(t, b, cfg, Norm{})
	checkScalar(t, "pg_loss with cap 4", st.PGLoss, -1.1)
	checkScalar(t, "tis_clipfrac with cap 4", st.Metrics()["actor/tis_clipfrac"], 0)
}

// TestTISAbsentChangesNothing: without BehavLogP the loss, every gradient
// and the metrics are those of the plain objective whatever TISCap is, and
// with BehavLogP = OldLogP (w = exp(0) = 1, a cap ≥ 1) they are the same
// bits; no tis metric appears without BehavLogP.
func TestTISAbsentChangesNothing(t *testing.T) {
	b := &Batch{Offsets: []int{0, 3, 4, 7}, Adv: []float32{1.3, -0.7, 0.4}}
	for k := range 7 {
		old := -0.3 - 0.25*float64(k)
		b.OldLogP = append(b.OldLogP, float32(old))
		b.LogP = append(b.LogP, logpAt(old, 0.6+0.15*float64(k)))
		b.RefLogP = append(b.RefLogP, float32(old-0.1))
		b.Entropy = append(b.Entropy, float32(0.5+0.1*float64(k)))
	}
	for _, agg := range []Agg{TokenMean, SeqMeanTokenMean, SeqMeanTokenSum, SeqMeanTokenSumNorm} {
		base := Config{ClipLow: 0.2, ClipHigh: 0.28, ClipC: 3, Agg: agg, NormLen: 5, KLCoef: 0.05, KLType: K3, EntropyCoef: 0.01}
		st0, g0, h0 := compute(t, b, base, Norm{})
		if m := st0.Metrics(); st0.HasTIS || m["actor/tis_weight_mean"] != 0 || len(m) != 6 {
			t.Errorf("%s: metrics without behaviour log-probs: %v", agg, m)
		}
		for _, c := range []float64{1, 2, 1e9} {
			cfg := base
			cfg.TISCap = c
			st1, g1, h1 := compute(t, b, cfg, Norm{})
			bw := *b
			bw.BehavLogP = b.OldLogP
			st2, g2, h2 := compute(t, &bw, cfg, Norm{})
			for _, o := range []struct {
				name string
				st   Stats
				g, h []float32
			}{{"no behav, cap set", st1, g1, h1}, {"behav = old", st2, g2, h2}} {
				if o.st.Loss != st0.Loss || o.st.PGLoss != st0.PGLoss || o.st.KLLoss != st0.KLLoss || o.st.Clipped != st0.Clipped || o.st.DualClipped != st0.DualClipped {
					t.Errorf("%s cap %g %s: stats %+v, want %+v", agg, c, o.name, o.st, st0)
				}
				for i := range g0 {
					if math.Float32bits(o.g[i]) != math.Float32bits(g0[i]) || math.Float32bits(o.h[i]) != math.Float32bits(h0[i]) {
						t.Errorf("%s cap %g %s: grad[%d] = %v, %v, want %v, %v", agg, c, o.name, i, o.g[i], o.h[i], g0[i], h0[i])
					}
				}
			}
			if st2.Metrics()["actor/tis_weight_mean"] != 1 {
				t.Errorf("%s: tis_weight_mean with behav = old is %v, want 1", agg, st2.Metrics()["actor/tis_weight_mean"])
			}
		}
	}
}

// TestTISErrors: a batch with behaviour log-probabilities needs a cap > 0,
// the right length and finite values.
func TestTISErrors(t *testing.T) {
	mk := func() *Batch {
		return &Batch{Offsets: []int{0, 2}, Adv: []float32{1}, LogP: []float32{-1, -1}, OldLogP: []float32{-1, -1}, BehavLogP: []float32{-1, -1}}
	}
	cases := []struct {
		name string
		edit func(*Batch, *Config)
		want string
	}{
		{"no cap", func(b *Batch, c *Config) { c.TISCap = 0 }, "tis_cap = 0"},
		{"negative cap", func(b *Batch, c *Config) { c.TISCap = -1 }, "tis_cap = -1"},
		{"NaN cap", func(b *Batch, c *Config) { c.TISCap = math.NaN() }, "tis_cap = NaN"},
		{"short", func(b *Batch, c *Config) { b.BehavLogP = b.BehavLogP[:1] }, "behav_logp has 1 values for 2 tokens"},
		{"NaN", func(b *Batch, c *Config) { b.BehavLogP[1] = float32(math.NaN()) }, "behav_logp is NaN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, cfg := mk(), DefaultConfig()
			tc.edit(b, &cfg)
			_, err := Compute(Grads{}, b, &cfg, Norm{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestAggregate: agg(x) by hand for x = [3 | 1 2 3] (two sequences of 1
// and 3 tokens), and with the last token masked out.
func TestAggregate(t *testing.T) {
	x, off := []float32{3, 1, 2, 3}, []int{0, 1, 4}
	mask := []float32{1, 1, 1, 0}
	for _, tc := range []struct {
		agg          Agg
		want, masked float64
	}{
		{TokenMean, 9.0 / 4, 6.0 / 3},                    // Σx/T
		{SeqMeanTokenMean, (3 + 2.0) / 2, (3 + 1.5) / 2}, // mean_i of the sequence means
		{SeqMeanTokenSum, (3 + 6.0) / 2, (3 + 3.0) / 2},  // mean_i of the sequence sums
		{SeqMeanTokenSumNorm, 9.0 / 3, 6.0 / 3},          // Σx/L, L = 3
	} {
		got, err := Aggregate(x, off, nil, tc.agg, 3)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.agg, got, err, tc.want)
		}
		if got, err := Aggregate(x, off, mask, tc.agg, 3); err != nil || !near(got, tc.masked, 1e-15, 1e-15) {
			t.Errorf("%s masked: %v, %v; want %v", tc.agg, got, err, tc.masked)
		}
	}
	if _, err := Aggregate(x[:3], off, nil, TokenMean, 0); err == nil {
		t.Error("3 values for 4 tokens: no error")
	}
}
