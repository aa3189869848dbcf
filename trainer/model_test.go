package trainer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// testConfig is a 2-layer model small enough for finite differences, with
// grouped-query attention (4 heads, 2 kv heads).
func testConfig(modelType string, tied bool) Config {
	return Config{
		ModelType: modelType, HiddenSize: 16, IntermediateSize: 24, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, VocabSize: 11, MaxPositionEmbeddings: 32,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: tied,
		QKVBias: modelType == "qwen2",
	}
}

// testBatch builds a right-padded batch with random tokens.
func testBatch(rng *rand.Rand, vocab int, lens []int, T int) Batch {
	b := Batch{B: len(lens), T: T, Lens: lens, Tokens: make([]int32, len(lens)*T)}
	for i := range b.Tokens {
		b.Tokens[i] = int32(rng.IntN(vocab))
	}
	return b
}

// newTestModel makes a model with larger, generic weights (std 0.3, norm
// gains 1±0.2, non-zero biases) so every gradient is well above float32
// noise.
func newTestModel(t *testing.T, c Config, seed uint64) *Model {
	t.Helper()
	m, err := NewModel(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, tn := range m.Table {
		v := m.Params[tn.Offset : tn.Offset+tn.Size]
		for i := range v {
			switch {
			case isNorm(tn.Name):
				v[i] = float32(1 + 0.2*rng.NormFloat64())
			case isBias(tn.Name):
				v[i] = float32(0.2 * rng.NormFloat64())
			default:
				v[i] = float32(0.3 * rng.NormFloat64())
			}
		}
	}
	return m
}

// TestGradCheck compares the analytic gradient of a scalar loss with
// central finite differences (eps 5e-3, float32 forward, loss summed in
// float64) on the largest-gradient element and two random elements of
// every tensor, for the RL path (logp at temperature 0.7 plus entropy) and
// the SFT path (cross-entropy), on llama (tied) and qwen2 (biases, untied)
// models with GQA. Tolerance: |fd − g| ≤ 1e-2·|g| + 1e-3·max|g of the tensor| + 1e-4·max|g|.
func TestGradCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		path   string
		chunk  int    // HeadChunk: rows of the loss head at a time (0: all)
		lora   string // lora targets ("" = full fine-tuning)
		recomp bool   // Recompute
	}{
		{"qwen2-untied-logp", testConfig("qwen2", false), "logp", 0, "", false},
		{"qwen2-untied-ce", testConfig("qwen2", false), "ce", 0, "", false},
		{"llama-tied-logp", testConfig("llama", true), "logp", 0, "", false},
		{"llama-tied-ce", testConfig("llama", true), "ce", 0, "", false},
		{"qwen2-chunked-logp", testConfig("qwen2", false), "logp", 4, "", false},
		{"llama-tied-chunked-ce", testConfig("llama", true), "ce", 5, "", false},
		{"qwen2-lora-all-logp", testConfig("qwen2", false), "logp", 4, "all", false},
		{"llama-lora-qv-ce", testConfig("llama", true), "ce", 0, "q,v,down", false},
		{"qwen2-recompute-logp", testConfig("qwen2", false), "logp", 4, "", true},
		{"llama-lora-recompute-ce", testConfig("llama", true), "ce", 0, "all", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestModel(t, tc.cfg, 1)
			m.HeadChunk = tc.chunk
			m.Recompute = tc.recomp
			if tc.lora != "" {
				targets, err := ParseLoRATargets(tc.lora)
				if err != nil {
					t.Fatal(err)
				}
				lo, err := NewLoRA(m, LoRAConfig{Rank: 3, Alpha: 6, Targets: targets}, 5, "", "")
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(9, 9))
				for i := range lo.Params { // B ≠ 0, so that A has a gradient
					lo.Params[i] = float32(0.3 * rng.NormFloat64())
				}
			}
			table, params, _ := m.Trainable()
			rng := rand.New(rand.NewPCG(2, 3))
			b := testBatch(rng, tc.cfg.VocabSize, []int{6, 4, 5}, 6)
			targets := NextTokenTargets(b, []int{1, 2, 3})
			N := b.B * b.T
			wl, we := make([]float32, N), make([]float32, N)
			for n := range N {
				wl[n] = float32(rng.NormFloat64())
				if n%b.T < b.Lens[n/b.T] {
					we[n] = float32(0.5 * rng.NormFloat64())
				}
			}
			const temp = 0.7
			loss := func() float64 {
				switch tc.path {
				case "logp":
					lp, ent, err := m.ForwardLogp(b, targets, temp, true)
					if err != nil {
						t.Fatal(err)
					}
					s := 0.0
					for n := range N {
						s += float64(wl[n])*float64(lp[n]) + float64(we[n])*float64(ent[n])
					}
					return s
				default:
					l, _, err := m.ForwardCE(b, targets)
					if err != nil {
						t.Fatal(err)
					}
					return float64(l)
				}
			}
			loss()
			m.ZeroGrad()
			var err error
			if tc.path == "logp" {
				err = m.BackwardLogp(wl, we)
			} else {
				err = m.BackwardCE(1)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _, g0 := m.Trainable()
			grads := append([]float32(nil), g0...)
			gmax := 0.0
			for _, g := range grads {
				gmax = max(gmax, math.Abs(float64(g)))
			}
			const eps = 5e-3
			worst := 0.0
			for _, tn := range table {
				tmax := 0.0
				for _, g := range grads[tn.Offset : tn.Offset+tn.Size] {
					tmax = max(tmax, math.Abs(float64(g)))
				}
				idx := []int{0, rng.IntN(tn.Size), rng.IntN(tn.Size)}
				for i := range tn.Size {
					if math.Abs(float64(grads[tn.Offset+i])) > math.Abs(float64(grads[tn.Offset+idx[0]])) {
						idx[0] = i
					}
				}
				for _, i := range idx {
					p := &params[tn.Offset+i]
					orig := *p
					*p = orig + eps
					m.WeightsChanged()
					lp := loss()
					*p = orig - eps
					m.WeightsChanged()
					lm := loss()
					*p = orig
					m.WeightsChanged()
					fd := (lp - lm) / (2 * eps)
					g := float64(grads[tn.Offset+i])
					diff := math.Abs(fd - g)
					tol := 1e-2*math.Abs(g) + 1e-3*tmax + 1e-4*gmax
					worst = max(worst, diff/tol)
					if diff > tol {
						t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g", tn.Name, i, g, fd)
					}
				}
			}
			t.Logf("max |g| %.3g, worst error / tolerance %.3f", gmax, worst)
		})
	}
}

// TestRecomputeBitIdentical: with Recompute (and a chunked head) the
// log-probs and every gradient have the bits of the plain backward, for
// full fine-tuning and LoRA.
func TestRecomputeBitIdentical(t *testing.T) {
	for _, lora := range []bool{false, true} {
		var grads [][]float32
		for _, rc := range []bool{false, true} {
			m := newTestModel(t, testConfig("qwen2", false), 3)
			m.Recompute, m.HeadChunk = rc, 5
			if lora {
				lo, err := NewLoRA(m, LoRAConfig{Rank: 2, Alpha: 2, Targets: LoRATargetNames}, 1, "", "")
				if err != nil {
					t.Fatal(err)
				}
				for i := range lo.Params {
					lo.Params[i] = float32(math.Sin(float64(i)))
				}
			}
			rng := rand.New(rand.NewPCG(4, 4))
			b := testBatch(rng, m.Config.VocabSize, []int{6, 3, 5}, 6)
			lp, _, err := m.ForwardLogp(b, NextTokenTargets(b, nil), 0.9, true)
			if err != nil {
				t.Fatal(err)
			}
			dl, de := make([]float32, len(lp)), make([]float32, len(lp))
			for i := range dl {
				dl[i], de[i] = float32(rng.NormFloat64()), 0.1
			}
			m.ZeroGrad()
			if err := m.BackwardLogp(dl, de); err != nil {
				t.Fatal(err)
			}
			_, _, g := m.Trainable()
			grads = append(grads, append(append([]float32(nil), g...), lp...))
		}
		if !bitsEqual(grads[0], grads[1]) {
			t.Errorf("lora %v: recompute changes the gradients or log-probs", lora)
		}
	}
}
