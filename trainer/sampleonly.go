package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/trainer/safetensors"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// A model loaded only to sample (a rollout stage) holds its matrices once,
// in the packed layout the sampler multiplies by (fp32 kernels.PackWeight
// or bf16 kernels.PackWeightBF16), and nothing else of size: no unpacked
// copy, no gradients, no optimizer state. Each matrix is read from
// model.safetensors 1024 rows at a time into a reused temporary and
// packed, so the peak is the packed weights plus a few MB. The embedding of a tied
// model is read back from the packed lm_head (kernels.PackedRows). Such a
// model samples with the bits of a fully loaded one (TestLoadForSampling);
// its trainer forward is an error.

// LoadForSampling is LoadCheckpoint for a stage that only samples: the
// model as described above in dtype (DTypeFP32, DTypeBF16, or "" for its
// config.json torch_dtype), the trainer state and the tokenizer, no
// optimizer state. A PEFT adapter folder loads fully (base and adapters),
// without optimizer state.
func LoadForSampling(dir, dtype string) (*Checkpoint, error) {
	if IsAdapterDir(dir) {
		ck, err := LoadCheckpoint(dir)
		if err != nil {
			return nil, err
		}
		ck.Opt.Release()
		ck.Opt = nil
		if dtype != "" {
			err = ck.Model.SetDType(dtype)
		}
		return ck, err
	}
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	if dtype == "" {
		dtype = configDType(filepath.Join(dir, ConfigFile))
	}
	if dtype, err = ParseDType(dtype); err != nil {
		return nil, err
	}
	m, err := loadSampleModel(dir, cfg, dtype)
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{Model: m}
	return ck, loadStateAndTokenizer(dir, ck)
}

// loadSampleModel reads dir/model.safetensors into a sample-only model.
func loadSampleModel(dir string, cfg Config, dtype string) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ModelFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: load model: %w", err)
	}
	defer f.Close()
	m := &Model{Config: cfg, Table: ParamTable(cfg), DType: dtype, be: selectedBackend(), ropeT: float32(cfg.RopeTheta), eps: float32(cfg.RMSNormEps)}
	sp := &sampleParts{small: map[string][]float32{}, pm: &packedModel{layers: make([]packedLayer, cfg.NumLayers)},
		bf: &bf16Weights{layers: make([]bf16Layer, cfg.NumLayers)}, bf16: dtype == DTypeBF16}
	want := map[string]bool{}
	for _, t := range m.Table {
		want[t.Name] = true
		if err := sp.read(f, t, cfg); err != nil {
			return nil, fmt.Errorf("trainer: load model %s: %w", path, err)
		}
	}
	for _, name := range f.Names() {
		if !want[name] && !ignoredTensor.MatchString(name) && !(cfg.TieWordEmbeddings && name == "lm_head.weight") {
			return nil, fmt.Errorf("trainer: load model %s: unexpected tensor %q (config %s with %d layers)", path, name, cfg.ModelType, cfg.NumLayers)
		}
	}
	m.W = bindSmall(cfg, sp.small)
	if sp.bf16 {
		bf := sp.bf
		bf.w = bindSmall(cfg, sp.small)
		bf.w.Norm = roundedCopy(nil, bf.w.Norm)
		for l := range bf.w.Layers {
			r := &bf.w.Layers[l]
			r.InputNorm, r.PostNorm = roundedCopy(nil, r.InputNorm), roundedCopy(nil, r.PostNorm)
			r.Bq, r.Bk, r.Bv = roundedCopy(nil, r.Bq), roundedCopy(nil, r.Bk), roundedCopy(nil, r.Bv)
		}
		m.bf, sp.pm = bf, &packedModel{bf: bf}
	}
	m.sampler = sp.pm
	return m, nil
}

// sampleParts collects a sample-only model while its tensors are read.
type sampleParts struct {
	small map[string][]float32 // norms, biases, an untied embedding
	pm    *packedModel         // fp32 packed matrices
	bf    *bf16Weights         // bf16 packed matrices
	bf16  bool
	tmp   []float32
}

// read reads tensor t: a small one into its own slice, a matrix piece by
// piece (sampleChunkRows rows at a time) into its packed place.
func (sp *sampleParts) read(f *safetensors.File, t Tensor, cfg Config) error {
	l, which, isMat := matrixSlot(t.Name, cfg)
	if !isMat {
		dst := make([]float32, t.Size)
		sp.small[t.Name] = dst
		if err := readTensor(f, t, dst, []string{"F32", "BF16", "F16"}); err != nil {
			return err
		}
		if !finite(dst) {
			return fmt.Errorf("tensor %q contains NaN or Inf", t.Name)
		}
		return nil
	}
	if err := checkTensor(f, t, []string{"F32", "BF16", "F16"}); err != nil {
		return err
	}
	N, K := t.Shape[0], t.Shape[1]
	var pack func(rows []float32, n0 int)
	if sp.bf16 {
		pw := kernels.NewPackedWeightBF16(N, K)
		pack = pw.PackRows
		if which < 0 {
			sp.bf.head = pw
		} else {
			p := &sp.bf.layers[l]
			*[...]**kernels.PackedWeightBF16{&p.q, &p.k, &p.v, &p.o, &p.gate, &p.up, &p.down}[which] = pw
		}
	} else {
		pw := kernels.NewPackedWeight(N, K)
		pack = pw.PackRows
		if which < 0 {
			sp.pm.head = pw
		} else {
			p := &sp.pm.layers[l]
			*[...]**kernels.PackedWeight{&p.q, &p.k, &p.v, &p.o, &p.gate, &p.up, &p.down}[which] = pw
		}
	}
	for n0 := 0; n0 < N; n0 += sampleChunkRows {
		n := min(sampleChunkRows, N-n0)
		sp.tmp = grow(sp.tmp, n*K)
		rows := sp.tmp[:n*K]
		if err := f.ReadRangeInto(t.Name, n0*K, rows); err != nil {
			return err
		}
		if !finite(rows) {
			return fmt.Errorf("tensor %q contains NaN or Inf", t.Name)
		}
		pack(rows, n0)
	}
	return nil
}

// sampleChunkRows is the number of rows of a matrix read and packed at a
// time (a multiple of 16).
var sampleChunkRows = 1024

// checkTensor checks t's presence, dtype and shape in f (readTensor's
// checks, without reading).
func checkTensor(f *safetensors.File, t Tensor, dtypes []string) error {
	in, ok := f.Info(t.Name)
	switch {
	case !ok:
		return fmt.Errorf("tensor %q missing", t.Name)
	case !slices.Contains(dtypes, in.DType):
		return fmt.Errorf("tensor %q has dtype %s, want one of %v", t.Name, in.DType, dtypes)
	case !slices.Equal(in.Shape, t.Shape):
		return fmt.Errorf("tensor %q has shape %v, want %v", t.Name, in.Shape, t.Shape)
	}
	return nil
}

// matrixSlot says where a tensor goes in a packed model: layer l's matrix
// which (pmQ..pmDown), or the head (which = -1: lm_head, or the embedding
// of a tied model); ok is false for the small tensors (and an untied
// embedding).
func matrixSlot(name string, cfg Config) (l, which int, ok bool) {
	switch {
	case name == "lm_head.weight", name == "model.embed_tokens.weight" && cfg.TieWordEmbeddings:
		return 0, -1, true
	case !strings.HasPrefix(name, "model.layers.") || !strings.HasSuffix(name, "_proj.weight"):
		return 0, 0, false
	}
	rest := strings.TrimPrefix(name, "model.layers.")
	i := strings.IndexByte(rest, '.')
	l, err := strconv.Atoi(rest[:i])
	if err != nil {
		return 0, 0, false
	}
	for w, suf := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
		if rest[i+1:] == suf+".weight" {
			return l, w, true
		}
	}
	return 0, 0, false
}

// bindSmall makes the Weights of a sample-only model: norms, biases and
// an untied embedding; no matrices (Embed is nil for a tied model).
func bindSmall(c Config, small map[string][]float32) Weights {
	w := Weights{Norm: small["model.norm.weight"], Layers: make([]LayerWeights, c.NumLayers)}
	if !c.TieWordEmbeddings {
		w.Embed = small["model.embed_tokens.weight"]
	}
	for l := range w.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		w.Layers[l] = LayerWeights{
			InputNorm: small[p+"input_layernorm.weight"], PostNorm: small[p+"post_attention_layernorm.weight"],
			Bq: small[p+"self_attn.q_proj.bias"], Bk: small[p+"self_attn.k_proj.bias"], Bv: small[p+"self_attn.v_proj.bias"],
		}
	}
	return w
}

// embedPacked is EmbedForward for a sample-only tied model: the rows of
// the packed lm_head.
func (m *Model) embedPacked(out []float32, tokens []int32) {
	if m.isBF16() {
		kernels.PackedRowsBF16(out, m.bf.head, tokens)
		return
	}
	kernels.PackedRows(out, m.sampler.head, tokens)
}

// errSampleOnly is the error of a trainer forward on a sample-only model.
var errSampleOnly = errors.New("trainer: model loaded for sampling only (LoadForSampling): it has no unpacked weights to train or score with")

// loadStateAndTokenizer reads dir's trainer_state.json and tokenizer into
// ck, as LoadCheckpoint does.
func loadStateAndTokenizer(dir string, ck *Checkpoint) error {
	if data, err := os.ReadFile(filepath.Join(dir, TrainerStateFile)); err == nil {
		var st TrainerState
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("trainer: load checkpoint %s: %s: %w", dir, TrainerStateFile, err)
		}
		ck.State = &st
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("trainer: load checkpoint %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, TokenizerFile)); err == nil {
		tok, err := tokenizer.LoadDir(dir)
		if err != nil {
			return fmt.Errorf("trainer: load checkpoint %s: %w", dir, err)
		}
		if v := tok.VocabSize(); v > ck.Model.Config.VocabSize {
			return fmt.Errorf("trainer: load checkpoint %s: tokenizer has %d tokens, model vocab_size %d", dir, v, ck.Model.Config.VocabSize)
		}
		ck.Tokenizer, ck.Model.VocabLimit = tok, tok.VocabSize()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("trainer: load checkpoint %s: %w", dir, err)
	}
	return nil
}
