package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Config describes a decoder-only transformer of the Llama/Qwen2 family.
// Field names and JSON keys follow Hugging Face's config.json, so a config
// written here loads in transformers and vLLM and an HF config loads here.
//
// Shapes derived from it (C = HiddenSize, H = NumHeads, KV = NumKVHeads,
// hd = C/H, I = IntermediateSize, V = VocabSize):
//
//	q_proj (H*hd, C), k_proj and v_proj (KV*hd, C), o_proj (C, H*hd),
//	gate_proj and up_proj (I, C), down_proj (C, I), embed_tokens and lm_head (V, C).
type Config struct {
	ModelType             string  `json:"model_type"` // "llama" or "qwen2"
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumLayers             int     `json:"num_hidden_layers"`
	NumHeads              int     `json:"num_attention_heads"`
	NumKVHeads            int     `json:"num_key_value_heads"`
	VocabSize             int     `json:"vocab_size"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	RMSNormEps            float64 `json:"rms_norm_eps"`
	RopeTheta             float64 `json:"rope_theta"`
	TieWordEmbeddings     bool    `json:"tie_word_embeddings"`
	// QKVBias adds biases to q_proj, k_proj and v_proj. It is not an HF
	// field: it is implied by ModelType ("qwen2" has them, "llama" does not,
	// unless a llama config sets "attention_bias": true).
	QKVBias bool `json:"-"`
}

// hfConfig is the on-disk form: Config plus the fields HF tooling expects.
type hfConfig struct {
	Architectures         []string `json:"architectures,omitempty"`
	ModelType             string   `json:"model_type"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumLayers             int      `json:"num_hidden_layers"`
	NumHeads              int      `json:"num_attention_heads"`
	NumKVHeads            *int     `json:"num_key_value_heads,omitempty"`
	HeadDim               int      `json:"head_dim,omitempty"`
	VocabSize             int      `json:"vocab_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	AttentionBias         *bool    `json:"attention_bias,omitempty"`
	HiddenAct             string   `json:"hidden_act,omitempty"`
	TorchDtype            string   `json:"torch_dtype,omitempty"`
	RopeScaling           any      `json:"rope_scaling,omitempty"`
	BOSTokenID            *int     `json:"bos_token_id,omitempty"`
	EOSTokenID            any      `json:"eos_token_id,omitempty"`
}

// HeadDim is hidden_size / num_attention_heads.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumHeads }

// Validate checks that the shapes are consistent and supported.
func (c Config) Validate() error {
	switch c.ModelType {
	case "llama", "qwen2":
	default:
		return fmt.Errorf("trainer: config: model_type %q not supported (want llama or qwen2)", c.ModelType)
	}
	pos := []struct {
		name string
		v    int
	}{
		{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumLayers}, {"num_attention_heads", c.NumHeads},
		{"num_key_value_heads", c.NumKVHeads}, {"vocab_size", c.VocabSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("trainer: config: %s = %d, must be > 0", p.name, p.v)
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return fmt.Errorf("trainer: config: hidden_size %d not divisible by num_attention_heads %d", c.HiddenSize, c.NumHeads)
	}
	if c.HeadDim()%2 != 0 {
		return fmt.Errorf("trainer: config: head dim %d must be even for rotary embeddings", c.HeadDim())
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("trainer: config: num_attention_heads %d not divisible by num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("trainer: config: rms_norm_eps %g must be > 0", c.RMSNormEps)
	}
	if !(c.RopeTheta > 0) {
		return fmt.Errorf("trainer: config: rope_theta %g must be > 0", c.RopeTheta)
	}
	return nil
}

// ParseConfig reads an HF config.json. Missing optional fields take HF's
// defaults (num_key_value_heads = num_attention_heads, rms_norm_eps 1e-6,
// rope_theta 10000). rope_scaling and a head_dim other than hidden/heads are
// rejected rather than silently ignored.
func ParseConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("trainer: parse config.json: %w", err)
	}
	c := Config{
		ModelType:             h.ModelType,
		HiddenSize:            h.HiddenSize,
		IntermediateSize:      h.IntermediateSize,
		NumLayers:             h.NumLayers,
		NumHeads:              h.NumHeads,
		NumKVHeads:            h.NumHeads,
		VocabSize:             h.VocabSize,
		MaxPositionEmbeddings: h.MaxPositionEmbeddings,
		RMSNormEps:            h.RMSNormEps,
		RopeTheta:             h.RopeTheta,
		TieWordEmbeddings:     h.TieWordEmbeddings,
		QKVBias:               h.ModelType == "qwen2",
	}
	if h.NumKVHeads != nil {
		c.NumKVHeads = *h.NumKVHeads
	}
	if h.AttentionBias != nil && h.ModelType == "llama" {
		c.QKVBias = *h.AttentionBias
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if h.RopeScaling != nil {
		return Config{}, fmt.Errorf("trainer: config: rope_scaling %v not supported", h.RopeScaling)
	}
	if h.HeadDim != 0 && h.NumHeads != 0 && h.HeadDim != h.HiddenSize/h.NumHeads {
		return Config{}, fmt.Errorf("trainer: config: head_dim %d != hidden_size/num_attention_heads %d not supported", h.HeadDim, h.HiddenSize/h.NumHeads)
	}
	if h.HiddenAct != "" && h.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("trainer: config: hidden_act %q not supported (want silu)", h.HiddenAct)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and parses an HF config.json file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("trainer: load config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%w (%s)", err, path)
	}
	return c, nil
}

// MarshalHF returns the config as an HF config.json document (indented),
// with architectures, hidden_act, torch_dtype "float32" and, for llama,
// attention_bias, so transformers and vLLM can load the checkpoint.
func (c Config) MarshalHF() ([]byte, error) { return c.marshalHF("float32") }

// marshalHF is MarshalHF with the given torch_dtype ("float32" or
// "bfloat16").
func (c Config) marshalHF(torchDtype string) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv := c.NumKVHeads
	h := hfConfig{
		ModelType:             c.ModelType,
		HiddenSize:            c.HiddenSize,
		IntermediateSize:      c.IntermediateSize,
		NumLayers:             c.NumLayers,
		NumHeads:              c.NumHeads,
		NumKVHeads:            &kv,
		HeadDim:               c.HeadDim(),
		VocabSize:             c.VocabSize,
		MaxPositionEmbeddings: c.MaxPositionEmbeddings,
		RMSNormEps:            c.RMSNormEps,
		RopeTheta:             c.RopeTheta,
		TieWordEmbeddings:     c.TieWordEmbeddings,
		HiddenAct:             "silu",
		TorchDtype:            torchDtype,
	}
	switch c.ModelType {
	case "llama":
		h.Architectures = []string{"LlamaForCausalLM"}
		b := c.QKVBias
		h.AttentionBias = &b
	case "qwen2":
		h.Architectures = []string{"Qwen2ForCausalLM"}
		if !c.QKVBias {
			return nil, fmt.Errorf("trainer: config: qwen2 always has q/k/v biases")
		}
	}
	out, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("trainer: marshal config: %w", err)
	}
	return append(out, '\n'), nil
}

// WriteConfig writes the config as dir/config.json.
func (c Config) WriteConfig(dir string) error {
	data, err := c.MarshalHF()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return fmt.Errorf("trainer: write config: %w", err)
	}
	return nil
}

// NamedConfigs lists the names NamedConfig accepts.
var NamedConfigs = []string{"tiny", "small"}

// NamedConfig returns a built-in config for the RL stages, with vocab_size
// set to vocab (the tokenizer's size):
//
//	tiny:  llama, 2 layers, hidden 64,  4 heads, 2 kv heads, intermediate 192, 256 positions
//	small: llama, 4 layers, hidden 128, 4 heads, 2 kv heads, intermediate 384, 512 positions
//
// Both use rms_norm_eps 1e-5, rope_theta 10000 and tied embeddings (the
// vocabularies are small, so untied heads would only add parameters).
func NamedConfig(name string, vocab int) (Config, error) {
	c := Config{
		ModelType:         "llama",
		VocabSize:         vocab,
		RMSNormEps:        1e-5,
		RopeTheta:         10000,
		TieWordEmbeddings: true,
	}
	switch name {
	case "tiny":
		c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads = 2, 64, 4, 2
		c.IntermediateSize, c.MaxPositionEmbeddings = 192, 256
	case "small":
		c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads = 4, 128, 4, 2
		c.IntermediateSize, c.MaxPositionEmbeddings = 384, 512
	default:
		return Config{}, fmt.Errorf("trainer: unknown named config %q (want one of %v)", name, NamedConfigs)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
