package trainer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// TestBF16SampleLogprobsMatchForwardLogp is the on-policy check in bf16:
// the sampler's logprobs equal ForwardLogp's bit for bit (PPO ratio 1 on
// the first update), with and without LoRA, with and without entropy.
func TestBF16SampleLogprobsMatchForwardLogp(t *testing.T) {
	for _, tc := range []struct {
		name string
		mt   string
		opt  SampleOptions
		lora bool
	}{
		{"T1 llama", "llama", SampleOptions{Temperature: 1, MaxNewTokens: 40}, false},
		{"T0.7 topk5 qwen2", "qwen2", SampleOptions{Temperature: 0.7, TopK: 5, MaxNewTokens: 40}, false},
		{"T1 lora qwen2", "qwen2", SampleOptions{Temperature: 1, MaxNewTokens: 30}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smpConfig(tc.mt)
			c.MaxPositionEmbeddings = 200
			m := smpModel(t, c, 5, 8)
			if err := m.SetDType(DTypeBF16); err != nil {
				t.Fatal(err)
			}
			if tc.lora {
				lo, err := NewLoRA(m, LoRAConfig{Rank: 4, Alpha: 8, Targets: LoRATargetNames}, 3, "", "")
				if err != nil {
					t.Fatal(err)
				}
				for i := range lo.Params {
					lo.Params[i] = float32(0.2 * math.Sin(float64(i)))
				}
			}
			prompts := smpPrompts(2, 8, c.VocabSize, 3, 1, 7, 12)
			out := generate(t, m, prompts, smpSeeds(8, 100), tc.opt)
			b, targets := concatBatch(prompts, out)
			for _, entropy := range []bool{false, true} {
				logp, _, err := m.ForwardLogp(b, targets, float32(tc.opt.Temperature), entropy)
				if err != nil {
					t.Fatal(err)
				}
				for i, p := range prompts {
					for j, lp := range out[i].Logprobs {
						if ref := logp[i*b.T+len(p)-1+j]; math.Float32bits(lp) != math.Float32bits(ref) {
							t.Fatalf("entropy %v: sequence %d token %d: sampler logprob %v, ForwardLogp %v", entropy, i, j, lp, ref)
						}
					}
				}
			}
		})
	}
}

// TestBF16ForwardIsBF16Weights: a bf16 forward depends on the bf16
// rounding of the parameters only (so a rollout from the bf16 checkpoint
// equals the trainer's forward on its fp32 masters), and differs from the
// fp32 forward by bf16's rounding, not more.
func TestBF16ForwardIsBF16Weights(t *testing.T) {
	c := smpConfig("qwen2")
	m := newTestModel(t, c, 3)
	b := testBatch(rand.New(rand.NewPCG(1, 2)), c.VocabSize, []int{20, 13}, 20)
	targets := NextTokenTargets(b, nil)
	logp32 := forwardLogp(t, m, b, targets)
	if err := m.SetDType(DTypeBF16); err != nil {
		t.Fatal(err)
	}
	logp16 := forwardLogp(t, m, b, targets)
	for i := range m.Params {
		m.Params[i] = kernels.BF16Float(kernels.BF16(m.Params[i]))
	}
	rounded := forwardLogp(t, m, b, targets)
	var maxd float64
	for n := range logp16 {
		if math.Float32bits(logp16[n]) != math.Float32bits(rounded[n]) {
			t.Fatalf("row %d: bf16 forward on fp32 masters %v, on bf16-rounded masters %v", n, logp16[n], rounded[n])
		}
		maxd = max(maxd, math.Abs(float64(logp16[n]-logp32[n])))
	}
	if maxd == 0 || maxd > 0.3 {
		t.Errorf("max |logp bf16 − logp fp32| = %g, want in (0, 0.3]", maxd)
	}
	t.Logf("max |logp bf16 − logp fp32| = %g", maxd)
}

func forwardLogp(t *testing.T, m *Model, b Batch, targets []int32) []float32 {
	t.Helper()
	lp, _, err := m.ForwardLogp(b, targets, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), lp...)
}

// TestBF16GradientsNearFP32: the gradient check of the bf16 model. Finite
// differences of a bf16 forward are rounding noise, so the bf16
// gradients are compared with the fp32 model's on the same bf16-rounded
// weights: per tensor, |g16 − g32| ≤ 5% of |g32| (L2) and the two point
// the same way (cosine > 0.995). A wrong operand, transpose or rounded
// copy in the bf16 backward gives errors of order 100%.
func TestBF16GradientsNearFP32(t *testing.T) {
	for _, mt := range []string{"llama", "qwen2"} {
		c := smpConfig(mt)
		m := newTestModel(t, c, 6)
		for i := range m.Params {
			m.Params[i] = kernels.BF16Float(kernels.BF16(m.Params[i]))
		}
		b := testBatch(rand.New(rand.NewPCG(4, 2)), c.VocabSize, []int{24, 17, 9}, 24)
		targets := NextTokenTargets(b, nil)
		grads := func(dtype string) []float32 {
			if err := m.SetDType(dtype); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.ForwardCE(b, targets); err != nil {
				t.Fatal(err)
			}
			m.ZeroGrad()
			if err := m.BackwardCE(1); err != nil {
				t.Fatal(err)
			}
			return append([]float32(nil), m.Grads...)
		}
		g32, g16 := grads(DTypeFP32), grads(DTypeBF16)
		for _, tn := range m.Table {
			var d2, n2, dot, n16 float64
			for i := tn.Offset; i < tn.Offset+tn.Size; i++ {
				a, b := float64(g32[i]), float64(g16[i])
				d2 += (a - b) * (a - b)
				n2 += a * a
				n16 += b * b
				dot += a * b
			}
			rel, cos := math.Sqrt(d2/n2), dot/math.Sqrt(n2*n16)
			if !(rel <= 0.05 && cos > 0.995) {
				t.Errorf("%s %s: bf16 gradient off the fp32 one by %.3g (L2, relative), cosine %.5f", mt, tn.Name, rel, cos)
			}
		}
	}
}
