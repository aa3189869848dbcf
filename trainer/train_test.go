package trainer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// sftStep runs one cross-entropy training step and returns the loss.
func sftStep(t *testing.T, m *Model, o *AdamW, s Schedule, b Batch, targets []int32) float32 {
	t.Helper()
	loss, _, err := m.ForwardCE(b, targets)
	if err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := m.BackwardCE(1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Step(o, s); err != nil {
		t.Fatal(err)
	}
	return loss
}

// TestOverfit: the tiny named config (2 layers, hidden 64) memorises a fixed
// batch of 4 random sequences of 16 tokens over a 16-token vocabulary: the
// cross-entropy starts near ln 16 ≈ 2.77 and must fall below 0.05 within
// 150 AdamW steps at lr 1e-2.
func TestOverfit(t *testing.T) {
	c, err := NamedConfig("tiny", 16)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultAdamW(len(m.Params))
	o.WeightDecay = 0
	s := Schedule{Kind: "constant", LR: 1e-2, Warmup: 5}
	rng := rand.New(rand.NewPCG(5, 5))
	b := testBatch(rng, c.VocabSize, []int{16, 16, 12, 9}, 16)
	targets := NextTokenTargets(b, nil)
	var first, loss float32
	for step := range 150 {
		loss = sftStep(t, m, o, s, b, targets)
		if step == 0 {
			first = loss
		}
		if loss < 0.05 {
			t.Logf("loss %.3f -> %.4f after %d steps", first, loss, step+1)
			return
		}
	}
	t.Fatalf("loss %.3f -> %.4f after 150 steps, want < 0.05", first, loss)
}

// rlStep runs one step of a REINFORCE-style objective through the logp
// path: L = −Σ A_b·logp / count − 0.01·Σ H / count, with fixed advantages.
func rlStep(t *testing.T, m *Model, o *AdamW, s Schedule, b Batch, targets []int32, adv []float32) float32 {
	t.Helper()
	lp, ent, err := m.ForwardLogp(b, targets, 1.0, true)
	if err != nil {
		t.Fatal(err)
	}
	N := b.B * b.T
	dlogp, dent := make([]float32, N), make([]float32, N)
	count := 0
	for _, tg := range targets {
		if tg >= 0 {
			count++
		}
	}
	loss := 0.0
	for n := range N {
		if targets[n] < 0 {
			continue
		}
		a := adv[n/b.T]
		loss += float64(-a*lp[n]-0.01*ent[n]) / float64(count)
		dlogp[n] = -a / float32(count)
		dent[n] = -0.01 / float32(count)
	}
	m.ZeroGrad()
	if err := m.BackwardLogp(dlogp, dent); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Step(o, s); err != nil {
		t.Fatal(err)
	}
	return float32(loss)
}

// resumeData gives the batch of step i (a pure function of i).
func resumeData(c Config, step int) (Batch, []int32, []float32) {
	rng := rand.New(rand.NewPCG(uint64(step), 99))
	b := testBatch(rng, c.VocabSize, []int{12, 7, 10}, 12)
	adv := []float32{1, -0.5, float32(rng.NormFloat64())}
	return b, NextTokenTargets(b, []int{3, 2, 4}), adv
}

// TestResume: 5 steps, save (atomic), load, 5 more steps gives losses and
// final weights bit-identical to 10 uninterrupted steps, for both the SFT
// and the RL (logp + entropy) paths, with a cosine schedule mid-warm-up at
// the save and clipping active.
func TestResume(t *testing.T) {
	for _, path := range []string{"sft", "rl"} {
		t.Run(path, func(t *testing.T) {
			c := testConfig("qwen2", false)
			s := Schedule{Kind: "cosine", LR: 3e-3, MinLR: 3e-4, Warmup: 7, Total: 10}
			step := func(m *Model, o *AdamW, i int) float32 {
				b, tg, adv := resumeData(c, i)
				if path == "sft" {
					return sftStep(t, m, o, s, b, tg)
				}
				return rlStep(t, m, o, s, b, tg, adv)
			}
			newOpt := func(n int) *AdamW {
				o := DefaultAdamW(n)
				o.MaxGradNorm = 0.5
				return o
			}
			m, _ := NewModel(c, 3)
			o := newOpt(len(m.Params))
			var want []float32
			for i := range 10 {
				want = append(want, step(m, o, i))
			}

			m2, _ := NewModel(c, 3)
			o2 := newOpt(len(m2.Params))
			var got []float32
			for i := range 5 {
				got = append(got, step(m2, o2, i))
			}
			dir := filepath.Join(t.TempDir(), "ckpt")
			st := &TrainerState{Step: o2.Step, Schedule: s, AdamW: *o2, Seed: 3}
			if err := SaveCheckpointAtomic(dir, &Checkpoint{Model: m2, Opt: o2, State: st}); err != nil {
				t.Fatal(err)
			}
			ck, err := LoadCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Opt == nil || ck.State == nil || ck.Opt.Step != 5 || ck.State.Step != 5 {
				t.Fatalf("loaded optimizer/state %+v %+v, want step 5", ck.Opt, ck.State)
			}
			if ck.State.AdamW.MaxGradNorm != 0.5 || ck.Opt.MaxGradNorm != 0.5 {
				t.Fatalf("max_grad_norm not restored: %v", ck.Opt.MaxGradNorm)
			}
			for i := 5; i < 10; i++ {
				got = append(got, step(ck.Model, ck.Opt, i))
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Errorf("step %d: resumed loss %v, uninterrupted %v", i, got[i], want[i])
				}
			}
			if !slices.Equal(ck.Model.Params, m.Params) {
				t.Errorf("final parameters differ after resume")
			}
			t.Logf("losses %v", want)
		})
	}
}

// TestCheckpointRoundTrip: every file of a checkpoint written by
// SaveCheckpoint reads back equal, the config survives, a second atomic
// save onto an existing directory is refused, and no temp dir is left.
func TestCheckpointRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"llama-tied", testConfig("llama", true)},
		{"qwen2-untied", testConfig("qwen2", false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestModel(t, tc.cfg, 4)
			o := DefaultAdamW(len(m.Params))
			for i := range o.M {
				o.M[i], o.V[i] = float32(i)*1e-3, float32(i)*1e-4
			}
			o.Step = 42
			st := &TrainerState{Step: 42, Schedule: Schedule{Kind: "constant", LR: 1e-3}, AdamW: *o, Seed: 9, RNG: []byte{1, 2, 3}, Extra: map[string]any{"epoch": 2.0}}
			tok, err := tokenizer.NewChars("0123456")
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			dir := filepath.Join(root, "step=42")
			if err := SaveCheckpointAtomic(dir, &Checkpoint{Model: m, Opt: o, State: st, Tokenizer: tok}); err != nil {
				t.Fatal(err)
			}
			ck, err := LoadCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Model.Config != tc.cfg {
				t.Errorf("config %+v, want %+v", ck.Model.Config, tc.cfg)
			}
			if !slices.Equal(ck.Model.Params, m.Params) || !slices.Equal(ck.Opt.M, o.M) || !slices.Equal(ck.Opt.V, o.V) || ck.Opt.Step != 42 {
				t.Errorf("parameters or optimizer state differ after the round trip")
			}
			if ck.Tokenizer == nil || !slices.Equal(ck.Tokenizer.Encode("6543210"), tok.Encode("6543210")) || ck.Tokenizer.EOS() != tok.EOS() {
				t.Errorf("tokenizer differs after the round trip")
			}
			if ck.State.Seed != 9 || !slices.Equal(ck.State.RNG, []byte{1, 2, 3}) || ck.State.Extra["epoch"] != 2.0 {
				t.Errorf("trainer state differs: %+v", ck.State)
			}
			err = SaveCheckpointAtomic(dir, &Checkpoint{Model: m})
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("second atomic save: %v, want fs.ErrExist", err)
			}
			ents, _ := os.ReadDir(root)
			if len(ents) != 1 {
				t.Errorf("root holds %d entries, want only the checkpoint", len(ents))
			}
			// A model-only checkpoint loads with no optimizer and no state.
			dir2 := filepath.Join(root, "weights")
			if err := SaveCheckpointAtomic(dir2, &Checkpoint{Model: m}); err != nil {
				t.Fatal(err)
			}
			ck2, err := LoadCheckpoint(dir2)
			if err != nil || ck2.Opt != nil || ck2.State != nil || ck2.Tokenizer != nil {
				t.Fatalf("model-only checkpoint: %v %+v", err, ck2)
			}
		})
	}
}

// TestCheckpointErrors: damaged checkpoints fail with an error naming the
// offending tensor or file, and never panic.
func TestCheckpointErrors(t *testing.T) {
	c := testConfig("qwen2", false)
	m := newTestModel(t, c, 4)
	o := DefaultAdamW(len(m.Params))
	good := filepath.Join(t.TempDir(), "good")
	if err := SaveCheckpointAtomic(good, &Checkpoint{Model: m, Opt: o}); err != nil {
		t.Fatal(err)
	}
	// other: the same model with a wider MLP, so its tensors have other shapes.
	c2 := c
	c2.IntermediateSize = 32
	m2, _ := NewModel(c2, 1)
	other := filepath.Join(t.TempDir(), "other")
	if err := SaveCheckpointAtomic(other, &Checkpoint{Model: m2, Opt: DefaultAdamW(len(m2.Params))}); err != nil {
		t.Fatal(err)
	}
	copyDir := func(t *testing.T) string {
		t.Helper()
		d := filepath.Join(t.TempDir(), "ck")
		os.Mkdir(d, 0o755)
		for _, f := range []string{ConfigFile, ModelFile, OptimizerFile} {
			data, err := os.ReadFile(filepath.Join(good, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, f), data, 0o644)
		}
		return d
	}
	modelSize := func() int64 {
		st, _ := os.Stat(filepath.Join(good, ModelFile))
		return st.Size()
	}()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"wrong shape", func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(other, ModelFile))
			os.WriteFile(filepath.Join(dir, ModelFile), data, 0o644)
		}, `"model.layers.0.mlp.gate_proj.weight" has shape [32 16], want [24 16]`},
		{"wrong optimizer shape", func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(other, OptimizerFile))
			os.WriteFile(filepath.Join(dir, OptimizerFile), data, 0o644)
		}, `"exp_avg.model.layers.0.mlp.gate_proj.weight" has shape [32 16], want [24 16]`},
		{"truncated data", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, ModelFile), modelSize-10)
		}, "model.safetensors"},
		{"truncated header", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, ModelFile), 20)
		}, "model.safetensors"},
		{"empty file", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, ModelFile), 0)
		}, "model.safetensors"},
		{"garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ModelFile), []byte(strings.Repeat("\xff", 64)), 0o644)
		}, "model.safetensors"},
		{"missing tensor", func(t *testing.T, dir string) {
			// a model with one layer fewer lacks model.layers.1.*
			c3 := c
			c3.NumLayers = 1
			m3, _ := NewModel(c3, 1)
			d3 := filepath.Join(t.TempDir(), "d3")
			if err := SaveCheckpointAtomic(d3, &Checkpoint{Model: m3}); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(filepath.Join(d3, ModelFile))
			os.WriteFile(filepath.Join(dir, ModelFile), data, 0o644)
		}, `tensor "model.layers.1.input_layernorm.weight" missing`},
		{"missing config", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ConfigFile))
		}, "config.json"},
		{"bad config", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"model_type":"gpt2"}`), 0o644)
		}, `model_type "gpt2"`},
		{"truncated optimizer", func(t *testing.T, dir string) {
			p := filepath.Join(dir, OptimizerFile)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-3)
		}, "optimizer.safetensors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t)
			tc.damage(t, dir)
			_, err := LoadCheckpoint(dir)
			if err == nil {
				t.Fatalf("loaded a damaged checkpoint")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}

		})
	}
}

// TestPaddingInvariance: a sequence's log-probabilities and entropies do
// not depend on padding (garbage tokens after its length, a longer T) or
// on the batch around it (its index, the other sequences).
//
// They are BIT-IDENTICAL: every matmul output element is one fixed-order
// FMA chain (kernels' gemm.go), whatever the row's place in the batch.
func TestPaddingInvariance(t *testing.T) {
	c := testConfig("qwen2", false)
	c.VocabSize = 50
	m := newTestModel(t, c, 6)
	rng := rand.New(rand.NewPCG(8, 8))
	seq := testBatch(rng, c.VocabSize, []int{9}, 9)
	ref := func(b Batch, idx int) ([]float32, []float32) {
		tg := NextTokenTargets(b, nil)
		lp, ent, err := m.ForwardLogp(b, tg, 0.9, true)
		if err != nil {
			t.Fatal(err)
		}
		lo := idx * b.T
		return slices.Clone(lp[lo : lo+8]), slices.Clone(ent[lo : lo+8])
	}
	wantLp, wantEnt := ref(seq, 0)
	for _, tc := range []struct {
		name string
		lens []int
		T    int
		idx  int
	}{
		{"padded", []int{9}, 20, 0},
		{"first of three", []int{9, 20, 3}, 20, 0},
		{"middle of five", []int{17, 2, 9, 11, 20}, 24, 2},
		{"last of eight", []int{5, 6, 7, 8, 10, 11, 12, 9}, 12, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBatch(rng, c.VocabSize, tc.lens, tc.T)
			copy(b.Tokens[tc.idx*tc.T:], seq.Tokens)
			// garbage in the padding must not matter either
			for i := tc.idx*tc.T + 9; i < (tc.idx+1)*tc.T; i++ {
				b.Tokens[i] = int32(rng.IntN(c.VocabSize))
			}
			lp, ent := ref(b, tc.idx)
			same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
			for i := range wantLp {
				if !same(lp[i], wantLp[i]) || !same(ent[i], wantEnt[i]) {
					t.Errorf("position %d: logp %v ent %v, alone %v %v", i, lp[i], ent[i], wantLp[i], wantEnt[i])
				}
			}
		})
	}
}

// writeSafetensorsDType writes tensors in the given dtype ("BF16", "F16" or
// "I32" for a wrong-dtype file) by hand, as HF does for half-precision
// checkpoints (the safetensors package writes F32 only). Values are
// converted by truncation (BF16) or round-to-nearest on exact halves (F16
// test values are chosen exactly representable).
func writeSafetensorsDType(t *testing.T, path string, m *Model, dtype string) {
	t.Helper()
	type entry struct {
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	header := map[string]any{}
	var data []byte
	for _, tn := range m.Table {
		begin := len(data)
		for _, x := range m.Params[tn.Offset : tn.Offset+tn.Size] {
			switch dtype {
			case "BF16":
				b := math.Float32bits(x) >> 16
				data = append(data, byte(b), byte(b>>8))
			case "F16":
				h := f32ToF16(x)
				data = append(data, byte(h), byte(h>>8))
			default:
				data = binary.LittleEndian.AppendUint32(data, uint32(int32(x)))
			}
		}
		header[tn.Name] = entry{dtype, tn.Shape, [2]int{begin, len(data)}}
	}
	hj, _ := json.Marshal(header)
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	out = append(append(out, hj...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// f32ToF16 converts a normal float32 whose value fits F16 exactly.
func f32ToF16(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	if x == 0 {
		return sign
	}
	exp := int((b>>23)&0xff) - 127 + 15
	return sign | uint16(exp)<<10 | uint16((b>>13)&0x3ff)
}

// TestLoadHalfPrecision: BF16 and F16 model.safetensors load converted to
// float32; an integer dtype is refused naming the tensor.
func TestLoadHalfPrecision(t *testing.T) {
	c := testConfig("qwen2", false)
	m, _ := NewModel(c, 2)
	for i := range m.Params {
		// exactly representable in F16 and BF16: k/64 for small k
		m.Params[i] = float32((i%61)-30) / 64
	}
	for _, tc := range []struct {
		dtype, wantErr string
	}{{"BF16", ""}, {"F16", ""}, {"I32", `tensor "model.embed_tokens.weight" has dtype I32`}} {
		t.Run(tc.dtype, func(t *testing.T) {
			dir := t.TempDir()
			if err := c.WriteConfig(dir); err != nil {
				t.Fatal(err)
			}
			writeSafetensorsDType(t, filepath.Join(dir, ModelFile), m, tc.dtype)
			got, err := LoadModel(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Params, m.Params) {
				t.Errorf("%s parameters differ after conversion", tc.dtype)
			}
		})
	}
}
