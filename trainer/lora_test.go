package trainer

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer/safetensors"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// loraFixture saves a base checkpoint under root/base and returns a model
// loaded from it with random adapters (B ≠ 0) on targets.
func loraFixture(t *testing.T, root string, c Config, targets []string) (*Model, string) {
	t.Helper()
	base := filepath.Join(root, "base")
	tok, err := tokenizer.NewChars("0123456")
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveCheckpointAtomic(base, &Checkpoint{Model: newTestModel(t, c, 4), Tokenizer: tok}); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(base)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := BaseFingerprint(base)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := NewLoRA(m, LoRAConfig{Rank: 2, Alpha: 4, Targets: targets}, 1, base, fp)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range lo.Params {
		lo.Params[i] = float32(0.3 * rng.NormFloat64())
	}
	return m, base
}

func logpOf(t *testing.T, m *Model) []float32 {
	t.Helper()
	rng := rand.New(rand.NewPCG(8, 8))
	b := testBatch(rng, m.Config.VocabSize, []int{6, 4}, 6)
	lp, _, err := m.ForwardLogp(b, NextTokenTargets(b, nil), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(lp)
}

// TestLoRACheckpointRoundTrip: a LoRA checkpoint holds the adapters and
// their moments, not the base (it names it); loading it gives the same
// bits of every log-prob; the PEFT export has PEFT's tensor names and
// loads back to the same bits; the merged export matches to float32
// rounding; an adapter whose base changed is refused naming both.
func TestLoRACheckpointRoundTrip(t *testing.T) {
	root := t.TempDir()
	m, base := loraFixture(t, root, testConfig("qwen2", false), []string{"q", "k", "v", "o", "gate", "up", "down"})
	_, n := m.trainTable()
	o := DefaultAdamW(n)
	for i := range o.M {
		o.M[i], o.V[i] = float32(i)*1e-3, float32(i)*1e-4
	}
	o.Step = 3
	ad := filepath.Join(root, "run", "step=1")
	os.MkdirAll(filepath.Dir(ad), 0o755)
	tok, _ := tokenizer.NewChars("0123456")
	if err := SaveCheckpointAtomic(ad, &Checkpoint{Model: m, Opt: o, Tokenizer: tok, State: &TrainerState{Step: 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ad, ModelFile)); err == nil {
		t.Errorf("LoRA checkpoint holds %s: the frozen base must not be written", ModelFile)
	}
	f, err := safetensors.ReadFile(filepath.Join(ad, AdapterModelFile))
	if err != nil {
		t.Fatal(err)
	}
	names := f.Names()
	f.Close()
	if !slices.Contains(names, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") ||
		!slices.Contains(names, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight") {
		t.Errorf("adapter tensor names %v lack PEFT's", names[:4])
	}
	cfgB, _ := os.ReadFile(filepath.Join(ad, AdapterConfigFile))
	if !strings.Contains(string(cfgB), `"base_model_name_or_path": "../../base"`) || !strings.Contains(string(cfgB), `"q_proj"`) {
		t.Errorf("adapter_config.json does not name its base relatively or its modules:\n%s", cfgB)
	}
	want := logpOf(t, m)

	ck, err := LoadCheckpoint(ad)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Model.LoRA == nil || ck.Opt == nil || !slices.Equal(ck.Opt.V, o.V) || ck.Opt.Step != 3 {
		t.Fatalf("loaded LoRA %v, optimizer %v", ck.Model.LoRA != nil, ck.Opt != nil)
	}
	if got := logpOf(t, ck.Model); !bitsEqual(got, want) {
		t.Errorf("reloaded adapter: log-probs differ")
	}

	peft := filepath.Join(root, "peft")
	if err := ExportAdapter(ck, peft, base); err != nil {
		t.Fatal(err)
	}
	pm, err := LoadModel(peft)
	if err != nil {
		t.Fatal(err)
	}
	if got := logpOf(t, pm); !bitsEqual(got, want) {
		t.Errorf("PEFT export: log-probs differ")
	}
	if pc, err := LoadCheckpoint(peft); err != nil || pc.Tokenizer == nil {
		t.Errorf("PEFT export (no tokenizer of its own): %v, tokenizer from the base %v", err, err == nil && pc.Tokenizer != nil)
	}

	merged := filepath.Join(root, "merged")
	if err := ExportMerged(ck, merged); err != nil {
		t.Fatal(err)
	}
	mm, err := LoadModel(merged)
	if err != nil {
		t.Fatal(err)
	}
	if mm.LoRA != nil {
		t.Fatal("merged export still has adapters")
	}
	for i, g := range logpOf(t, mm) {
		if math.Abs(float64(g-want[i])) > 1e-4 {
			t.Fatalf("merged export: logp[%d] = %v, adapted model %v", i, g, want[i])
		}
	}

	// Another base at the same path: refused, naming both.
	if err := os.RemoveAll(base); err != nil {
		t.Fatal(err)
	}
	if err := SaveCheckpointAtomic(base, &Checkpoint{Model: newTestModel(t, testConfig("qwen2", false), 99)}); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCheckpoint(ad)
	if err == nil || !strings.Contains(err.Error(), ad) || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "not the same base") {
		t.Errorf("adapter on another base: err = %v", err)
	}
	// A base of another shape: refused naming both.
	os.RemoveAll(base)
	small := testConfig("qwen2", false)
	small.HiddenSize, small.IntermediateSize = 8, 12
	if err := SaveCheckpointAtomic(base, &Checkpoint{Model: newTestModel(t, small, 1)}); err != nil {
		t.Fatal(err)
	}
	_, err = LoadModel(peft) // the PEFT export has a fingerprint too; drop it to reach the shape check
	if err == nil || !strings.Contains(err.Error(), peft) {
		t.Errorf("adapter on a smaller base: err = %v", err)
	}
	os.Remove(filepath.Join(peft, AdapterBaseFile))
	_, err = LoadModel(peft)
	if err == nil || !strings.Contains(err.Error(), peft) || !strings.Contains(err.Error(), base) {
		t.Errorf("adapter on a smaller base without a fingerprint: err = %v", err)
	}
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestLoRAArgs: ranges and target names are checked, naming the valid ones.
func TestLoRAArgs(t *testing.T) {
	if _, err := ParseLoRATargets("q,attn"); err == nil || !strings.Contains(err.Error(), "q, k, v, o, gate, up, down") {
		t.Errorf("unknown target: %v", err)
	}
	if ts, err := ParseLoRATargets("v_proj, q"); err != nil || !slices.Equal(ts, []string{"q", "v"}) {
		t.Errorf("ParseLoRATargets = %v, %v", ts, err)
	}
	for _, c := range []LoRAConfig{{Rank: 0, Alpha: 1, Targets: []string{"q"}}, {Rank: 4, Alpha: 0, Targets: []string{"q"}},
		{Rank: 4, Alpha: 8, Dropout: 0.1, Targets: []string{"q"}}, {Rank: 4, Alpha: 8}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestLoRATrainsAdaptersOnly: an AdamW step under LoRA changes the
// adapters, never the base, and the model holds no base gradients.
func TestLoRATrainsAdaptersOnly(t *testing.T) {
	m, _ := loraFixture(t, t.TempDir(), testConfig("llama", true), []string{"q", "v"})
	before := slices.Clone(m.Params)
	ad := slices.Clone(m.LoRA.Params)
	rng := rand.New(rand.NewPCG(1, 1))
	b := testBatch(rng, m.Config.VocabSize, []int{6, 5}, 6)
	if _, _, err := m.ForwardCE(b, NextTokenTargets(b, nil)); err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := m.BackwardCE(1); err != nil {
		t.Fatal(err)
	}
	_, n := m.trainTable()
	if _, _, err := m.Step(DefaultAdamW(n), Schedule{Kind: "constant", LR: 1e-2}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, m.Params) || m.Grads != nil {
		t.Error("base changed or base gradients allocated under LoRA")
	}
	if slices.Equal(ad, m.LoRA.Params) {
		t.Error("adapters did not move")
	}
}
