package loss

import (
	"math"
	"strings"
	"testing"
)

// Hand-computed tests (issue 4, "Loss tests"). Every expected loss and
// gradient below is worked out in the comments, not by calling the package.
// Inputs are built from the ratio ρ the case wants: logπ_θ = logπ_old + ln ρ
// (float32, so ρ is exact to ~1e-7 relative; the tolerances allow for that).

// logpAt returns float32(old + ln ρ): the current log-probability giving ratio ρ.
func logpAt(old, rho float64) float32 { return float32(old + math.Log(rho)) }

// near reports |got − want| ≤ atol + rtol·|want|.
func near(got, want, atol, rtol float64) bool {
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

// compute runs Compute with fresh gradient buffers prefilled with garbage,
// so a test also proves every gradient is written (=).
func compute(t *testing.T, b *Batch, cfg Config, n Norm) (Stats, []float32, []float32) {
	t.Helper()
	T := b.NumTokens()
	dlogp, dh := make([]float32, T), make([]float32, T)
	for i := range dlogp {
		dlogp[i], dh[i] = 7777, 7777
	}
	st, err := Compute(Grads{LogP: dlogp, Entropy: dh}, b, &cfg, n)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return st, dlogp, dh
}

func checkVec(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range want {
		if !near(float64(got[i]), want[i], 1e-6, 1e-5) {
			t.Errorf("%s[%d] = %.9g, want %.9g", name, i, got[i], want[i])
		}
	}
}

func checkScalar(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !near(got, want, 1e-7, 1e-6) {
		t.Errorf("%s = %.12g, want %.12g", name, got, want)
	}
}

// TestPPOClipToken: one token, token-mean (weight 1), so loss = ℓ and
// ∂loss/∂logπ_θ = ∂ℓ/∂logπ_θ. logπ_old = −1 throughout.
func TestPPOClipToken(t *testing.T) {
	sym := Config{ClipLow: 0.2, ClipHigh: 0.2, Agg: TokenMean}            // ρ range [0.8, 1.2]
	higher := Config{ClipLow: 0.2, ClipHigh: 0.28, Agg: TokenMean}        // DAPO clip-higher: [0.8, 1.28]
	dual := Config{ClipLow: 0.2, ClipHigh: 0.2, ClipC: 3, Agg: TokenMean} // dual clip c = 3
	zero := Config{ClipLow: 0, ClipHigh: 0, Agg: TokenMean}               // range [1, 1]

	cases := []struct {
		name        string
		cfg         Config
		adv, rho    float64
		loss, grad  float64
		clipped     bool
		dualClipped bool
	}{
		// L1 = −1·1.1 = −1.1; L2 = −1·clip(1.1) = −1.1; tie → ℓ = −1.1.
		// Tie: ½·∂L1 + ½·∂L2 = ½(−1.1) + ½(−1.1) = −1.1 = −A·ρ.
		{"A>0 inside", sym, 1, 1.1, -1.1, -1.1, false, false},
		// L1 = −1.5; L2 = −1·1.2 = −1.2 > L1 → ℓ = −1.2, clipped branch, ρ outside → grad 0.
		{"A>0 above", sym, 1, 1.5, -1.2, 0, true, false},
		// L1 = −0.5; L2 = −0.8 < L1 → ℓ = −0.5, unclipped → grad −A·ρ = −0.5.
		{"A>0 below", sym, 1, 0.5, -0.5, -0.5, false, false},
		// L1 = 0.9 = L2 → ℓ = 0.9; grad −A·ρ = 0.9.
		{"A<0 inside", sym, -1, 0.9, 0.9, 0.9, false, false},
		// L1 = 1.5; L2 = 1.2 < L1 → ℓ = 1.5 (a negative advantage is not clipped above); grad 1.5.
		{"A<0 above", sym, -1, 1.5, 1.5, 1.5, false, false},
		// L1 = 0.5; L2 = 0.8 > L1 → ℓ = 0.8 clipped; grad 0.
		{"A<0 below", sym, -1, 0.5, 0.8, 0, true, false},
		// A = 2: L1 = L2 = −2.2 → ℓ = −2.2; grad −2·1.1 = −2.2.
		{"A=2 inside", sym, 2, 1.1, -2.2, -2.2, false, false},
		// A = 0: everything is 0.
		{"A=0", sym, 0, 1.5, 0, 0, false, false},
		// Range [1, 1], ρ = 1 sits on both ends: L1 = L2 = −1.5 tie, and the clamp
		// passes its gradient at the boundary (torch: lo ≤ x ≤ hi), so
		// grad = ½(−1.5) + ½(−1.5·1) = −1.5 (a clamp open at its ends would give −0.75).
		{"zero-width range boundary", zero, 1.5, 1, -1.5, -1.5, false, false},

		// Clip-higher: ρ = 1.25 is inside [0.8, 1.28]: ℓ = −1.25, grad −1.25 ...
		{"clip-higher A>0 1.25 inside", higher, 1, 1.25, -1.25, -1.25, false, false},
		// ... but clipped with the symmetric range: L2 = −1.2 > −1.25 → ℓ = −1.2, grad 0.
		{"symmetric A>0 1.25 clipped", sym, 1, 1.25, -1.2, 0, true, false},
		// ρ = 1.3 > 1.28: L2 = −1.28 > L1 = −1.3 → ℓ = −1.28, grad 0.
		{"clip-higher A>0 above", higher, 1, 1.3, -1.28, 0, true, false},
		// The lower end is unchanged: ρ = 0.75 < 0.8, A = −1: L1 = 0.75, L2 = 0.8 → ℓ = 0.8, grad 0.
		{"clip-higher A<0 below", higher, -1, 0.75, 0.8, 0, true, false},
		// ρ = 0.85 inside: ℓ = 0.85, grad 0.85.
		{"clip-higher A<0 inside", higher, -1, 0.85, 0.85, 0.85, false, false},

		// Dual clip c = 3, A = −1, ρ = 4: L1 = 4, L2 = 1.2, Lc = 4 > L3 = 3 → ℓ = 3, grad 0.
		{"dual A<0 rho=4", dual, -1, 4, 3, 0, false, true},
		// ρ = 2: Lc = 2 < 3 → ℓ = 2, grad −A·ρ = 2.
		{"dual A<0 rho=2", dual, -1, 2, 2, 2, false, false},
		// A = −2, ρ = 4: L1 = 8, Lc = 8 > L3 = 2·3 = 6 → ℓ = 6, grad 0.
		{"dual A=-2 rho=4", dual, -2, 4, 6, 0, false, true},
		// A > 0 never dual-clips: L1 = −4, L2 = −1.2 → ℓ = −1.2 (ordinary clip), grad 0.
		{"dual A>0 rho=4", dual, 1, 4, -1.2, 0, true, false},
		// A = −1, ρ = 0.5: Lc = max(0.5, 0.8) = 0.8 < 3 → ℓ = 0.8 (ordinary clip), grad 0.
		{"dual A<0 below", dual, -1, 0.5, 0.8, 0, true, false},
		// Dual clip off (c = 0), same token as "dual A<0 rho=4": ℓ = 4, grad 4.
		{"no dual A<0 rho=4", sym, -1, 4, 4, 4, false, false},

		// Log-ratio clamp: logπ_θ − logπ_old = ln(e^25) = 25 → log_ρ = 20, ρ = e^20 =
		// 485165195.4097903. A = −1: L1 = e^20 > L2 = 1.2 → ℓ = e^20; the clamp is
		// active, so grad 0.
		{"log-ratio clamp +20", sym, -1, math.Exp(25), 485165195.4097903, 0, false, false},
		// 25 below: ρ = e^−20 = 2.061153622438558e-9; A = 1: L1 = −2.06e-9 > L2 = −0.8
		// → ℓ = −2.061153622438558e-9, grad 0 (clamp).
		{"log-ratio clamp -20", sym, 1, math.Exp(-25), -2.061153622438558e-9, 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const old = -1.0
			var logp float32
			if d := math.Log(c.rho); math.Abs(d) > 20 {
				logp = float32(old + d) // exact enough: |d| = 25 is an integer
			} else {
				logp = logpAt(old, c.rho)
			}
			b := &Batch{Offsets: []int{0, 1}, Adv: []float32{float32(c.adv)}, LogP: []float32{logp}, OldLogP: []float32{old}}
			st, g, _ := compute(t, b, c.cfg, Norm{})
			checkScalar(t, "loss", st.Loss, c.loss)
			checkScalar(t, "pg_loss", st.PGLoss, c.loss)
			checkVec(t, "dlogp", g, []float64{c.grad})
			if got := st.Clipped == 1; got != c.clipped {
				t.Errorf("clipped = %v, want %v", got, c.clipped)
			}
			if got := st.DualClipped == 1; got != c.dualClipped {
				t.Errorf("dual clipped = %v, want %v", got, c.dualClipped)
			}
		})
	}
}

// TestDualClipTie: ρ exactly equal to c, A = −1, so Lc = −A·ρ = L3 = −A·c.
// torch.minimum splits the tie ½/½ and L3 has no gradient: grad = ½·(−A·ρ) = ½·3 = 1.5.
func TestDualClipTie(t *testing.T) {
	old := float32(-1)
	logp := logpAt(-1, 3)
	c := math.Exp(float64(logp) - float64(old)) // the exact ρ the code will see, ≈ 3
	cfg := Config{ClipLow: 0.2, ClipHigh: 0.2, ClipC: c, Agg: TokenMean}
	b := &Batch{Offsets: []int{0, 1}, Adv: []float32{-1}, LogP: []float32{logp}, OldLogP: []float32{old}}
	st, g, _ := compute(t, b, cfg, Norm{})
	checkScalar(t, "loss", st.Loss, 3) // ℓ = min(3, 3)
	checkVec(t, "dlogp", g, []float64{1.5})
	if st.DualClipped != 0 {
		t.Errorf("a tie is not counted as dual-clipped (verl: Lc > L3 strictly), got %d", st.DualClipped)
	}
}

// TestPPOMetrics: four tokens, token-mean (w = ¼), dual clip c = 3.
//
//	seq 0, A = −1: ρ = 4 → ℓ = 3 (dual clip, grad 0)
//	               ρ = 2 → ℓ = 2 (grad −A·ρ = 2)
//	               ρ = 0.5 → ℓ = max(0.5, 0.8) = 0.8 (clipped, grad 0)
//	seq 1, A = 1:  ρ = 1.5 → ℓ = max(−1.5, −1.2) = −1.2 (clipped, grad 0)
//
// pg_loss = (3 + 2 + 0.8 − 1.2)/4 = 4.6/4 = 1.15; grads ¼·(0, 2, 0, 0).
// pg_clipfrac = 2/4 (ρ = 0.5 and ρ = 1.5); pg_clipfrac_lower = 1/4 (ρ = 4).
// ppo_kl = mean(−ln ρ) = −(ln 4 + ln 2 + ln 0.5 + ln 1.5)/4 = −ln 6/4
// = −1.791759469228055/4 = −0.44793986730701374.
func TestPPOMetrics(t *testing.T) {
	b := &Batch{
		Offsets: []int{0, 3, 4},
		Adv:     []float32{-1, 1},
		OldLogP: []float32{-1, -1, -1, -1},
		LogP:    []float32{logpAt(-1, 4), logpAt(-1, 2), logpAt(-1, 0.5), logpAt(-1, 1.5)},
	}
	cfg := Config{ClipLow: 0.2, ClipHigh: 0.2, ClipC: 3, Agg: TokenMean}
	st, g, dh := compute(t, b, cfg, Norm{})
	checkScalar(t, "loss", st.Loss, 1.15)
	checkVec(t, "dlogp", g, []float64{0, 0.5, 0, 0})
	checkVec(t, "dH", dh, []float64{0, 0, 0, 0})
	m := st.Metrics()
	for name, want := range map[string]float64{
		"actor/pg_loss":           1.15,
		"actor/pg_clipfrac":       0.5,
		"actor/pg_clipfrac_lower": 0.25,
		"actor/ppo_kl":            -0.44793986730701374,
	} {
		got, ok := m[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		checkScalar(t, name, got, want)
	}
	for _, name := range []string{"actor/entropy", "actor/kl_loss"} {
		if _, ok := m[name]; ok {
			t.Errorf("metric %s present without its input", name)
		}
	}
}

// TestAggregation: one batch, every mode. All ratios are inside [0.8, 1.2],
// so ℓ = −A·ρ and ∂ℓ/∂logπ_θ = −A·ρ on every token.
//
//	seq 0, A = 1:  ρ = 1.0, 1.1, 0.9    ℓ = −1.0, −1.1, −0.9   Σ = −3.0, n_0 = 3
//	seq 1, A = −2: ρ = 1.0, (masked)    ℓ = 2.0                Σ = 2.0,  n_1 = 1
//	seq 2, A = 0.5: no tokens           left out of N
//
// Σ ℓ·m = −1.0, Σ m = 4, N = 2. The masked token holds NaN: never read, gradient 0.
func TestAggregation(t *testing.T) {
	nan := float32(math.NaN())
	b := &Batch{
		Offsets: []int{0, 3, 5, 5},
		Adv:     []float32{1, -2, 0.5},
		OldLogP: []float32{-1, -1, -1, -1, nan},
		LogP:    []float32{logpAt(-1, 1), logpAt(-1, 1.1), logpAt(-1, 0.9), logpAt(-1, 1), nan},
		Mask:    []float32{1, 1, 1, 1, 0},
	}
	cases := []struct {
		agg     Agg
		normLen int
		loss    float64
		grad    []float64
	}{
		// Σℓm/Σm = −1.0/4 = −0.25; w = ¼: (−1.0, −1.1, −0.9, 2.0)/4.
		{TokenMean, 0, -0.25, []float64{-0.25, -0.275, -0.225, 0.5, 0}},
		// (−3.0/3 + 2.0/1)/2 = (−1 + 2)/2 = 0.5; w = 1/(3·2) = 1/6 on seq 0, 1/(1·2) = ½ on seq 1:
		// −1.0/6, −1.1/6, −0.9/6, 2.0/2.
		{SeqMeanTokenMean, 0, 0.5, []float64{-1.0 / 6, -1.1 / 6, -0.9 / 6, 1.0, 0}},
		// (−3.0 + 2.0)/2 = −0.5; w = ½.
		{SeqMeanTokenSum, 0, -0.5, []float64{-0.5, -0.55, -0.45, 1.0, 0}},
		// Σℓm/L with L = 8: −1.0/8 = −0.125; w = 1/8.
		{SeqMeanTokenSumNorm, 8, -0.125, []float64{-0.125, -0.1375, -0.1125, 0.25, 0}},
	}
	for _, c := range cases {
		t.Run(string(c.agg), func(t *testing.T) {
			cfg := Config{ClipLow: 0.2, ClipHigh: 0.2, Agg: c.agg, NormLen: c.normLen}
			st, g, _ := compute(t, b, cfg, Norm{})
			checkScalar(t, "loss", st.Loss, c.loss)
			checkVec(t, "dlogp", g, c.grad)
			if st.Tokens != 4 || st.Seqs != 2 {
				t.Errorf("tokens, seqs = %d, %d; want 4, 2", st.Tokens, st.Seqs)
			}
		})
	}
}

// TestKL: A = 0, so the policy term and its gradient vanish and the loss is
// KLCoef·agg(KL). logπ_ref = −1; d = logπ_θ − logπ_ref; token-mean.
func TestKL(t *testing.T) {
	cases := []struct {
		name   string
		kl     KLType
		coef   float64
		d      []float64
		klLoss float64 // agg(KL), the kl_loss metric
		loss   float64
		grad   []float64
	}{
		// k1 = d: (0.5, −1) → agg = −0.25; loss = 0.5·(−0.25) = −0.125;
		// grad = coef·w·1 = 0.5·½ = 0.25.
		{"k1", K1, 0.5, []float64{0.5, -1}, -0.25, -0.125, []float64{0.25, 0.25}},
		// k1 has no clamp: d = 25 → 25, grad 1 (w = 1).
		{"k1 unclamped", K1, 1, []float64{25}, 25, 25, []float64{1}},
		// k2 = ½d²: (0.125, 0.5) → agg = 0.3125; loss = 0.15625;
		// grad = coef·w·d = 0.5·½·0.5 = 0.125 and 0.5·½·(−1) = −0.25.
		{"k2", K2, 0.5, []float64{0.5, -1}, 0.3125, 0.15625, []float64{0.125, -0.25}},
		// k3 with x = −d, value eˣ − x − 1, grad ∂/∂logπ_θ = 1 − eˣ, w = 1/5:
		//   d = 0.5:  x = −0.5, e^−0.5 = 0.6065306597126334: k3 = 0.1065306597126334, grad 0.3934693402873666
		//   d = −1:   x = 1, e = 2.718281828459045:            k3 = 0.718281828459045,  grad −1.718281828459045
		//   d = −2.5: x = 2.5, e^2.5 = 12.182493960703473:     k3 = 8.682493960703473,  grad −11.182493960703473
		//   d = 12:   x = −12: e^−12 + 11 = 11.0000061 > 10 → k3 = 10 (clamp), grad 0
		//   d = −3:   x = 3: e³ − 4 = 16.0855 > 10         → k3 = 10 (clamp), grad 0
		// Σ = 0.1065306597126334 + 0.718281828459045 + 8.682493960703473 + 20 = 29.50730644887515;
		// agg = 29.50730644887515/5 = 5.90146128977503; grads /5.
		{"k3", K3, 1, []float64{0.5, -1, -2.5, 12, -3}, 5.90146128977503, 5.90146128977503,
			[]float64{0.07869386805747332, -0.343656365691809, -2.2364987921406946, 0, 0}},
		// k3 log clamp: d = 25 → x = clamp(−25) = −20 → e^−20 + 19 → 10;
		// d = −25 → x = 20 → e^20 − 21 → 10; d = −1000 → x = 20 → 10 as well (without
		// the clamp on x, e^1000 = +Inf and the gradient 0·Inf would be NaN).
		// Both clamps → grad 0. agg = 10, coef 0.1 → loss 1.
		{"k3 log clamp", K3, 0.1, []float64{25, -25, -1000}, 10, 1, []float64{0, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			T := len(c.d)
			b := &Batch{Offsets: []int{0, T}, Adv: []float32{0}}
			for _, d := range c.d {
				b.RefLogP = append(b.RefLogP, -1)
				b.LogP = append(b.LogP, float32(-1+d)) // exact in float32 for these d
				b.OldLogP = append(b.OldLogP, float32(-1+d))
			}
			cfg := Config{ClipLow: 0.2, ClipHigh: 0.2, Agg: TokenMean, KLType: c.kl, KLCoef: c.coef}
			st, g, _ := compute(t, b, cfg, Norm{})
			checkScalar(t, "loss", st.Loss, c.loss)
			checkScalar(t, "kl_loss", st.Metrics()["actor/kl_loss"], c.klLoss)
			checkVec(t, "dlogp", g, c.grad)
		})
	}
}

// TestEntropy: A = 0, EntropyCoef = 0.01, H = (2.0, 1.0 | 0.5). The loss is
// −0.01·agg(H) and ∂loss/∂H = −0.01·w; the entropy metric is the masked token
// mean 3.5/3 = 1.1666666666666667 in every mode.
func TestEntropy(t *testing.T) {
	b := &Batch{
		Offsets: []int{0, 2, 3},
		Adv:     []float32{0, 0},
		LogP:    []float32{-1, -2, -3},
		OldLogP: []float32{-1, -2, -3},
		Entropy: []float32{2, 1, 0.5},
	}
	cases := []struct {
		agg  Agg
		loss float64
		dH   []float64
	}{
		// agg = 3.5/3 = 1.1666666666666667 → loss = −0.011666666666666667; dH = −0.01/3.
		{TokenMean, -0.011666666666666667, []float64{-0.01 / 3, -0.01 / 3, -0.01 / 3}},
		// agg = (1.5 + 0.5)/2 = 1.0 → loss = −0.01; w = ¼, ¼, ½ → dH = −0.0025, −0.0025, −0.005.
		{SeqMeanTokenMean, -0.01, []float64{-0.0025, -0.0025, -0.005}},
	}
	for _, c := range cases {
		t.Run(string(c.agg), func(t *testing.T) {
			cfg := Config{ClipLow: 0.2, ClipHigh: 0.2, Agg: c.agg, EntropyCoef: 0.01}
			st, g, dh := compute(t, b, cfg, Norm{})
			checkScalar(t, "loss", st.Loss, c.loss)
			checkVec(t, "dH", dh, c.dH)
			checkVec(t, "dlogp", g, []float64{0, 0, 0})
			checkScalar(t, "entropy", st.Metrics()["actor/entropy"], 1.1666666666666667)
		})
	}
}

// TestTotal: every term at once. clip [0.8, 1.28], c = 3, k2 with coef 0.1,
// entropy coef 0.01, seq-mean-token-sum over N = 2 sequences (w = ½).
//
//	seq 0, A = 1:    ρ = 1.1 → ℓ = −1.1, ∂ℓ = −1.1;  d_ref = 0.2,  H = 1
//	                 ρ = 1.5 → ℓ = −1.28 (clip), ∂ℓ = 0; d_ref = −0.4, H = 3
//	seq 1, A = −0.5: ρ = 4 → L1 = 2, L2 = 0.64, Lc = 2 > L3 = 1.5 → ℓ = 1.5, ∂ℓ = 0; d_ref = 0, H = 2
//
// pg = (−1.1 − 1.28 + 1.5)/2 = −0.44; KL = ½d² = (0.02, 0.08, 0) → (0.1)/2 = 0.05;
// agg H = 6/2 = 3. loss = −0.44 − 0.01·3 + 0.1·0.05 = −0.44 − 0.03 + 0.005 = −0.465.
// dlogp = ½·∂ℓ + 0.1·½·d: −0.55 + 0.01 = −0.54; 0 − 0.02 = −0.02; 0.
// dH = −0.01·½ = −0.005. Metrics: clipfrac 1/3, clipfrac_lower 1/3, entropy 6/3 = 2,
// ppo_kl = −ln(1.1·1.5·4)/3 = −ln 6.6/3 = −1.8870696490323797/3 = −0.6290232163441266.
func TestTotal(t *testing.T) {
	logp := []float32{logpAt(-1, 1.1), logpAt(-1, 1.5), logpAt(-1, 4)}
	dref := []float64{0.2, -0.4, 0}
	ref := make([]float32, 3)
	for i := range ref {
		ref[i] = float32(float64(logp[i]) - dref[i])
	}
	b := &Batch{
		Offsets: []int{0, 2, 3},
		Adv:     []float32{1, -0.5},
		LogP:    logp,
		OldLogP: []float32{-1, -1, -1},
		RefLogP: ref,
		Entropy: []float32{1, 3, 2},
	}
	cfg := Config{ClipLow: 0.2, ClipHigh: 0.28, ClipC: 3, Agg: SeqMeanTokenSum, KLType: K2, KLCoef: 0.1, EntropyCoef: 0.01}
	st, g, dh := compute(t, b, cfg, Norm{})
	checkScalar(t, "loss", st.Loss, -0.465)
	checkVec(t, "dlogp", g, []float64{-0.54, -0.02, 0})
	checkVec(t, "dH", dh, []float64{-0.005, -0.005, -0.005})
	m := st.Metrics()
	for name, want := range map[string]float64{
		"actor/pg_loss":           -0.44,
		"actor/kl_loss":           0.05,
		"actor/entropy":           2,
		"actor/pg_clipfrac":       1.0 / 3,
		"actor/pg_clipfrac_lower": 1.0 / 3,
		"actor/ppo_kl":            -0.6290232163441266,
	} {
		checkScalar(t, name, m[name], want)
	}
}

// TestLogRatioClampMetrics: ppo_kl uses the clamped log-ratio (verl clamps
// negative_approx_kl before its mean), MaxAbsLogR the raw one. Tokens with
// logπ_θ − logπ_old = 25 and 0: ppo_kl = −(20 + 0)/2 = −10; max |d| = 25.
func TestLogRatioClampMetrics(t *testing.T) {
	b := &Batch{Offsets: []int{0, 2}, Adv: []float32{1}, LogP: []float32{24, -1}, OldLogP: []float32{-1, -1}}
	st, _, _ := compute(t, b, DefaultConfig(), Norm{})
	checkScalar(t, "ppo_kl", st.Metrics()["actor/ppo_kl"], -10)
	checkScalar(t, "max |log ρ|", st.MaxAbsLogR, 25)
}

func TestParse(t *testing.T) {
	for in, want := range map[string]KLType{"k1": K1, "kl": K1, "k2": K2, "mse": K2, "k3": K3, "low_var_kl": K3} {
		if got, err := ParseKLType(in); err != nil || got != want {
			t.Errorf("ParseKLType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseKLType("k4"); err == nil {
		t.Error("ParseKLType(k4): no error")
	}
	for _, a := range []Agg{TokenMean, SeqMeanTokenMean, SeqMeanTokenSum, SeqMeanTokenSumNorm} {
		if got, err := ParseAgg(string(a)); err != nil || got != a {
			t.Errorf("ParseAgg(%q) = %q, %v", a, got, err)
		}
	}
	if _, err := ParseAgg("mean"); err == nil {
		t.Error("ParseAgg(mean): no error")
	}
}

// TestErrors: bad configurations and layouts are reported, naming the argument.
func TestErrors(t *testing.T) {
	good := func() *Batch {
		return &Batch{Offsets: []int{0, 2}, Adv: []float32{1}, LogP: []float32{-1, -1}, OldLogP: []float32{-1, -1}}
	}
	def := DefaultConfig()
	cases := []struct {
		name string
		cfg  func(*Config)
		b    func(*Batch)
		want string
	}{
		{"clip_low negative", func(c *Config) { c.ClipLow = -0.1 }, nil, "clip_low"},
		{"clip_low one", func(c *Config) { c.ClipLow = 1 }, nil, "clip_low"},
		{"clip_high negative", func(c *Config) { c.ClipHigh = -1 }, nil, "clip_high"},
		{"clip_c one", func(c *Config) { c.ClipC = 1 }, nil, "clip_c"},
		{"clip_c NaN", func(c *Config) { c.ClipC = math.NaN() }, nil, "clip_c"},
		{"agg unknown", func(c *Config) { c.Agg = "mean" }, nil, "loss_agg"},
		{"sum-norm without L", func(c *Config) { c.Agg = SeqMeanTokenSumNorm }, nil, "max_new_tokens"},
		{"kl type unknown", func(c *Config) { c.KLCoef = 0.1; c.KLType = "k9" }, func(b *Batch) { b.RefLogP = []float32{-1, -1} }, "kl_type"},
		{"kl without ref", func(c *Config) { c.KLCoef = 0.1 }, nil, "reference"},
		{"entropy without H", func(c *Config) { c.EntropyCoef = 0.1 }, nil, "entropies"},
		{"offsets start", nil, func(b *Batch) { b.Offsets = []int{1, 2} }, "offsets[0]"},
		{"offsets decrease", nil, func(b *Batch) { b.Offsets = []int{0, 2, 1} }, "decrease"},
		{"adv count", nil, func(b *Batch) { b.Adv = nil }, "advantages"},
		{"logp length", nil, func(b *Batch) { b.LogP = b.LogP[:1] }, "logp"},
		{"mask value", nil, func(b *Batch) { b.Mask = []float32{1, 0.5} }, "mask[1]"},
		{"nan logp", nil, func(b *Batch) { b.LogP[1] = float32(math.NaN()) }, "token 1"},
		{"inf adv", nil, func(b *Batch) { b.Adv[0] = float32(math.Inf(1)) }, "advantage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, b := def, good()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			if c.b != nil {
				c.b(b)
			}
			_, err := Compute(Grads{}, b, &cfg, Norm{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	if _, err := Compute(Grads{LogP: make([]float32, 1)}, good(), &def, Norm{}); err == nil {
		t.Error("short gradient buffer: no error")
	}
}
