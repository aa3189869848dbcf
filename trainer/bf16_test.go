package trainer

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
				smpLoRA(t, m)
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
	m.WeightsChanged()
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

// TestBF16Checkpoint: a bf16 checkpoint is HF's bf16 layout
// (config.json torch_dtype bfloat16, model.safetensors in BF16) and keeps
// the fp32 masters in optimizer.safetensors: LoadCheckpoint restores the
// masters bit for bit (exact resume); LoadModel alone (a rollout) gets
// their bf16 rounding, whose forward equals the masters' bf16 forward.
func TestBF16Checkpoint(t *testing.T) {
	c := smpConfig("qwen2")
	m := newTestModel(t, c, 8)
	if err := m.SetDType(DTypeBF16); err != nil {
		t.Fatal(err)
	}
	o := DefaultAdamW(len(m.Params))
	b := testBatch(rand.New(rand.NewPCG(2, 2)), c.VocabSize, []int{16, 11}, 16)
	targets := NextTokenTargets(b, nil)
	sftStep(t, m, o, Schedule{Kind: "constant", LR: 1e-2}, b, targets)
	dir := t.TempDir()
	if err := SaveCheckpoint(dir, &Checkpoint{Model: m, Opt: o, State: &TrainerState{Step: o.Step}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil || !strings.Contains(string(cfg), `"torch_dtype": "bfloat16"`) {
		t.Fatalf("config.json %s (%v): want torch_dtype bfloat16", cfg, err)
	}
	st, _ := os.Stat(filepath.Join(dir, ModelFile))
	if want := int64(2 * len(m.Params)); st.Size() < want || st.Size() > want+int64(len(m.Table))*200 {
		t.Errorf("model.safetensors is %d bytes, want about 2 per parameter (%d)", st.Size(), want)
	}
	ck, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Model.DType != DTypeBF16 || !slices.Equal(ck.Model.Params, m.Params) || !slices.Equal(ck.Opt.M, o.M) {
		t.Fatalf("LoadCheckpoint: dtype %q, masters equal %v, moments equal %v", ck.Model.DType, slices.Equal(ck.Model.Params, m.Params), slices.Equal(ck.Opt.M, o.M))
	}
	roll, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range roll.Params {
		if want := kernels.BF16Float(kernels.BF16(m.Params[i])); math.Float32bits(x) != math.Float32bits(want) {
			t.Fatalf("model.safetensors value %d = %v, want bf16(master) %v", i, x, want)
		}
	}
	want, got := forwardLogp(t, m, b, targets), forwardLogp(t, roll, b, targets)
	if !slices.Equal(want, got) {
		t.Errorf("forward of the bf16 checkpoint differs from the masters' bf16 forward")
	}
	// a bf16 checkpoint without its masters is refused by LoadOptimizer
	os.Remove(filepath.Join(dir, OptimizerFile))
	var o2 = *o
	o2.Step = ck.Opt.Step
	fp := *ck.Model
	fp.DType = DTypeFP32
	if err := SaveCheckpoint(dir, &Checkpoint{Model: &fp, Opt: &o2}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOptimizer(dir, ck.Model, nil); err == nil || !strings.Contains(err.Error(), "master") {
		t.Errorf("bf16 model with an fp32 optimizer file: err %v, want one naming the master weights", err)
	}
}

// TestLoadHFBF16: a hand-made HF bf16 checkpoint (torch_dtype bfloat16,
// BF16 tensors written by hand as transformers does) loads as a bf16
// model with the file's values.
func TestLoadHFBF16(t *testing.T) {
	c := testConfig("qwen2", false)
	m, _ := NewModel(c, 2)
	for i := range m.Params {
		m.Params[i] = float32((i%61)-30) / 64 // exact in bf16
	}
	dir := t.TempDir()
	data, err := c.marshalHF("bfloat16")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	writeSafetensorsDType(t, filepath.Join(dir, ModelFile), m, "BF16")
	got, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.DType != DTypeBF16 || !slices.Equal(got.Params, m.Params) {
		t.Errorf("dtype %q, parameters equal %v: want bf16 and the file's values", got.DType, slices.Equal(got.Params, m.Params))
	}
}

// TestLoadForSampling: a model loaded only to sample (packed weights, no
// unpacked copy) samples the tokens and logprobs of the fully loaded
// model bit for bit, in fp32 and bf16, tied (llama) and untied with biases
// (qwen2); its trainer forward is an error.
func TestLoadForSampling(t *testing.T) {
	defer func(n int) { sampleChunkRows = n }(sampleChunkRows)
	sampleChunkRows = 16 // matrices read and packed in several pieces
	for _, mt := range []string{"llama", "qwen2"} {
		for _, dt := range []string{DTypeFP32, DTypeBF16} {
			c := smpConfig(mt)
			c.TieWordEmbeddings = mt == "llama"
			m := smpModel(t, c, 5, 8)
			if err := m.SetDType(dt); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := SaveCheckpoint(dir, &Checkpoint{Model: m}); err != nil {
				t.Fatal(err)
			}
			full, err := LoadModel(dir)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := LoadForSampling(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			s := ck.Model
			if s.DType != dt || s.Params != nil || s.Grads != nil {
				t.Fatalf("%s %s: sample-only model: dtype %q, %d params, %d grads", mt, dt, s.DType, len(s.Params), len(s.Grads))
			}
			prompts := smpPrompts(2, 6, c.VocabSize, 3, 9, 5)
			opt := SampleOptions{Temperature: 1, MaxNewTokens: 20}
			want, got := generate(t, full, prompts, smpSeeds(6, 7), opt), generate(t, s, prompts, smpSeeds(6, 7), opt)
			for i := range want {
				if !slices.Equal(got[i].Tokens, want[i].Tokens) || !slices.Equal(got[i].Logprobs, want[i].Logprobs) {
					t.Fatalf("%s %s: sequence %d: sample-only model sampled %v %v, full model %v %v", mt, dt, i, got[i].Tokens, got[i].Logprobs, want[i].Tokens, want[i].Logprobs)
				}
			}
			b, targets := concatBatch(prompts, got)
			if _, _, err := s.ForwardLogp(b, targets, 1, false); err == nil || !strings.Contains(err.Error(), "sampling only") {
				t.Errorf("%s %s: ForwardLogp on a sample-only model: err %v", mt, dt, err)
			}
		}
	}
}
