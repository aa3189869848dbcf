package trainer

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestParseConfig reads HF config.json documents as transformers writes
// them (Qwen2.5-0.5B and a Llama with defaults left out) and rejects what
// rljob cannot run.
func TestParseConfig(t *testing.T) {
	qwen := `{
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936}`
	for _, tc := range []struct {
		name    string
		json    string
		want    Config
		wantErr string
	}{
		{"qwen2.5-0.5b", qwen, Config{ModelType: "qwen2", HiddenSize: 896, IntermediateSize: 4864,
			NumLayers: 24, NumHeads: 14, NumKVHeads: 2, VocabSize: 151936, MaxPositionEmbeddings: 32768,
			RMSNormEps: 1e-6, RopeTheta: 1e6, TieWordEmbeddings: true, QKVBias: true}, ""},
		{"llama defaults", `{"model_type":"llama","hidden_size":64,"intermediate_size":128,
			"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"max_position_embeddings":64}`,
			Config{ModelType: "llama", HiddenSize: 64, IntermediateSize: 128, NumLayers: 2, NumHeads: 4,
				NumKVHeads: 4, VocabSize: 100, MaxPositionEmbeddings: 64, RMSNormEps: 1e-6, RopeTheta: 10000}, ""},
		{"llama attention_bias", `{"model_type":"llama","hidden_size":64,"intermediate_size":128,
			"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":1,"vocab_size":100,
			"max_position_embeddings":64,"attention_bias":true,"rms_norm_eps":1e-5}`,
			Config{ModelType: "llama", HiddenSize: 64, IntermediateSize: 128, NumLayers: 2, NumHeads: 4,
				NumKVHeads: 1, VocabSize: 100, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000, QKVBias: true}, ""},
		{"gpt2", `{"model_type":"gpt2"}`, Config{}, `model_type "gpt2"`},
		{"rope scaling", strings.Replace(qwen, `"rope_theta"`, `"rope_scaling": {"type":"yarn","factor":4}, "rope_theta"`, 1), Config{}, "rope_scaling"},
		{"gelu", strings.Replace(qwen, `"silu"`, `"gelu"`, 1), Config{}, "hidden_act"},
		{"heads", strings.Replace(qwen, `"num_key_value_heads": 2`, `"num_key_value_heads": 3`, 1), Config{}, "not divisible by num_key_value_heads"},
		{"not json", `{"model_type":`, Config{}, "parse config.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			// round trip through the HF form
			data, err := got.MarshalHF()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseConfig(data)
			if err != nil || back != got {
				t.Fatalf("round trip: %+v, %v\n%s", back, err, data)
			}
		})
	}
}

// TestMarshalHF pins the fields HF tooling needs in a written config.json.
func TestMarshalHF(t *testing.T) {
	c, err := NamedConfig("tiny", 20)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := c.WriteConfig(dir); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"architectures": []any{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"torch_dtype": "float32", "attention_bias": false, "tie_word_embeddings": true,
		"num_key_value_heads": 2.0, "head_dim": 16.0, "vocab_size": 20.0,
	} {
		if gb, _ := json.Marshal(m[k]); string(gb) != mustJSON(want) {
			t.Errorf("%s = %s, want %s", k, gb, mustJSON(want))
		}
	}
	back, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil || back != c {
		t.Errorf("LoadConfig: %+v %v", back, err)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestNamedConfig: the named configs are valid, take the vocabulary size
// given, and unknown names are errors listing the known ones.
func TestNamedConfig(t *testing.T) {
	for _, tc := range []struct {
		name           string
		layers, hidden int
	}{{"tiny", 2, 64}, {"small", 4, 128}} {
		c, err := NamedConfig(tc.name, 37)
		if err != nil {
			t.Fatal(err)
		}
		if c.NumLayers != tc.layers || c.HiddenSize != tc.hidden || c.VocabSize != 37 || c.NumKVHeads >= c.NumHeads {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
	if _, err := NamedConfig("huge", 10); err == nil || !strings.Contains(err.Error(), "tiny") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := NamedConfig("tiny", 0); err == nil {
		t.Errorf("vocab 0 accepted")
	}
}

// TestParamTable: names, shapes and offsets of the flat buffer, hand-counted
// for a 1-layer qwen2 model (C=8, H=2, KV=1, hd=4, I=12, V=5, untied).
func TestParamTable(t *testing.T) {
	c := Config{ModelType: "qwen2", HiddenSize: 8, IntermediateSize: 12, NumLayers: 1, NumHeads: 2,
		NumKVHeads: 1, VocabSize: 5, MaxPositionEmbeddings: 8, RMSNormEps: 1e-6, RopeTheta: 1e4, QKVBias: true}
	want := []struct {
		name  string
		shape []int
		decay bool
	}{
		{"model.embed_tokens.weight", []int{5, 8}, true},
		{"model.layers.0.input_layernorm.weight", []int{8}, false},
		{"model.layers.0.self_attn.q_proj.weight", []int{8, 8}, true},
		{"model.layers.0.self_attn.q_proj.bias", []int{8}, false},
		{"model.layers.0.self_attn.k_proj.weight", []int{4, 8}, true},
		{"model.layers.0.self_attn.k_proj.bias", []int{4}, false},
		{"model.layers.0.self_attn.v_proj.weight", []int{4, 8}, true},
		{"model.layers.0.self_attn.v_proj.bias", []int{4}, false},
		{"model.layers.0.self_attn.o_proj.weight", []int{8, 8}, true},
		{"model.layers.0.post_attention_layernorm.weight", []int{8}, false},
		{"model.layers.0.mlp.gate_proj.weight", []int{12, 8}, true},
		{"model.layers.0.mlp.up_proj.weight", []int{12, 8}, true},
		{"model.layers.0.mlp.down_proj.weight", []int{8, 12}, true},
		{"model.norm.weight", []int{8}, false},
		{"lm_head.weight", []int{5, 8}, true},
	}
	tab := ParamTable(c)
	if len(tab) != len(want) {
		t.Fatalf("%d tensors, want %d", len(tab), len(want))
	}
	off := 0
	for i, w := range want {
		g := tab[i]
		if g.Name != w.name || !slices.Equal(g.Shape, w.shape) || g.Decay != w.decay || g.Offset != off {
			t.Errorf("tensor %d: %+v, want %+v at offset %d", i, g, w, off)
		}
		off += g.Size
	}
	// 40 + 8 + 64+8 + 32+4 + 32+4 + 64 + 8 + 96+96+96 + 8 + 40 = 600
	if n := NumParams(c); n != off || n != 600 {
		t.Errorf("NumParams %d, want 600", n)
	}
	if MatmulParams(c) != 560 {
		t.Errorf("MatmulParams %d, want 560 (all but the 40 embedding values)", MatmulParams(c))
	}
	c.TieWordEmbeddings = true
	if NumParams(c) != 560 || MatmulParams(c) != 560 {
		t.Errorf("tied: NumParams %d MatmulParams %d, want 560 both", NumParams(c), MatmulParams(c))
	}
	// init: norms 1, biases 0, matrices ~ N(0, 0.02²), deterministic in the seed
	m1, _ := NewModel(c, 7)
	m2, _ := NewModel(c, 7)
	if !slices.Equal(m1.Params, m2.Params) {
		t.Errorf("same seed, different init")
	}
	for _, tn := range m1.Table {
		v := m1.Params[tn.Offset : tn.Offset+tn.Size]
		switch {
		case isNorm(tn.Name):
			if slices.ContainsFunc(v, func(x float32) bool { return x != 1 }) {
				t.Errorf("%s not all 1", tn.Name)
			}
		case isBias(tn.Name):
			if slices.ContainsFunc(v, func(x float32) bool { return x != 0 }) {
				t.Errorf("%s not all 0", tn.Name)
			}
		default:
			if slices.ContainsFunc(v, func(x float32) bool { return math.Abs(float64(x)) > 0.2 }) {
				t.Errorf("%s has values beyond 10 std", tn.Name)
			}
		}
	}
}

// TestSchedule checks learning rates worked out by hand.
func TestSchedule(t *testing.T) {
	cos := Schedule{Kind: "cosine", LR: 1, MinLR: 0.1, Warmup: 2, Total: 6}
	con := Schedule{Kind: "constant", LR: 0.5, Warmup: 4}
	for _, tc := range []struct {
		name string
		s    Schedule
		step int
		want float64
	}{
		{"cos warm 0", cos, 0, 0.5},   // 1·1/2
		{"cos warm 1", cos, 1, 1},     // 1·2/2
		{"cos start", cos, 2, 1},      // p = 0
		{"cos mid", cos, 4, 0.55},     // p = 1/2: 0.1 + 0.45·(1+0)
		{"cos end", cos, 6, 0.1},      // p = 1
		{"cos after", cos, 9, 0.1},    // clamped
		{"const warm", con, 0, 0.125}, // 0.5·1/4
		{"const", con, 10, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.At(tc.step); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("At(%d) = %v, want %v", tc.step, got, tc.want)
			}
		})
	}
	for _, bad := range []Schedule{{Kind: "linear", LR: 1}, {Kind: "cosine", LR: 1, Warmup: 5, Total: 5}, {Kind: "constant", LR: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// TestAdamW: one update by hand, clipping, no decay on norms and biases,
// and a non-finite gradient refused.
func TestAdamW(t *testing.T) {
	table := []Tensor{{Name: "w", Shape: []int{2}, Offset: 0, Size: 2, Decay: true}, {Name: "b", Shape: []int{1}, Offset: 2, Size: 1}}
	p := []float32{1, -2, 3}
	g := []float32{3, 4, 0} // norm 5
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, MaxGradNorm: 1, M: make([]float32, 3), V: make([]float32, 3)}
	norm, err := o.Update(table, p, g, 0.01)
	if err != nil || norm != 5 || o.Step != 1 {
		t.Fatalf("norm %v step %d err %v", norm, o.Step, err)
	}
	// step 1: m̂ = g', v̂ = g'², so the Adam step is lr·sign(g') (up to eps);
	// decay: p·(1 − lr·wd) on w only. g' = g/5 (clipped).
	want := []float64{1*(1-0.001) - 0.01, -2*(1-0.001) - 0.01, 3}
	for i := range p {
		if math.Abs(float64(p[i])-want[i]) > 1e-6 {
			t.Errorf("p[%d] = %v, want %v", i, p[i], want[i])
		}
	}
	if math.Abs(float64(o.M[0])-0.1*0.6) > 1e-7 || math.Abs(float64(o.V[1])-0.001*0.64) > 1e-8 {
		t.Errorf("moments m %v v %v", o.M, o.V)
	}
	g[0] = float32(math.NaN())
	before := slices.Clone(p)
	if _, err := o.Update(table, p, g, 0.01); err == nil || !slices.Equal(p, before) || o.Step != 1 {
		t.Errorf("NaN gradient: err %v, params changed %v, step %d", err, !slices.Equal(p, before), o.Step)
	}
}

// TestWriteFiles: a checkpoint can be written through any writer (e.g.
// the lake's staged WriteFile), file by file.
func TestWriteFiles(t *testing.T) {
	m, _ := NewModel(testConfig("llama", true), 1)
	files := map[string][]byte{}
	put := func(name string, write func(io.Writer) error) error {
		var b bytes.Buffer
		err := write(&b)
		files[name] = b.Bytes()
		return err
	}
	st := &TrainerState{Step: 0, Schedule: Schedule{Kind: "constant", LR: 1}}
	if err := (&Checkpoint{Model: m, Opt: DefaultAdamW(len(m.Params)), State: st}).WriteFiles(put); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{ConfigFile, ModelFile, OptimizerFile, TrainerStateFile}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

// TestInitThreads: the seeded init gives the same bytes with 1 thread and
// with several, and different bytes for another seed.
func TestInitThreads(t *testing.T) {
	c := testConfig("qwen2", false)
	c.VocabSize = 5000 // > initChunk values in the embedding, so it spans chunks
	prev := runtime.GOMAXPROCS(1)
	m1, _ := NewModel(c, 11)
	runtime.GOMAXPROCS(max(prev, 4))
	m2, _ := NewModel(c, 11)
	m3, _ := NewModel(c, 12)
	runtime.GOMAXPROCS(prev)
	if !slices.Equal(m1.Params, m2.Params) {
		t.Errorf("init depends on the thread count")
	}
	if slices.Equal(m1.Params, m3.Params) {
		t.Errorf("seeds 11 and 12 give the same init")
	}
}
