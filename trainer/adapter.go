package trainer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rljob/rljob/trainer/safetensors"
)

// A LoRA checkpoint is a PEFT adapter folder plus rljob's record of its base:
//
//	adapter_config.json        PEFT's LoraConfig (peft_type LORA, r, lora_alpha, target_modules, ...)
//	adapter_model.safetensors  base_model.model.model.layers.{i}.{self_attn|mlp}.{q|k|v|o|gate|up|down}_proj.lora_{A|B}.weight
//	adapter_base.json          {"base": folder of the frozen base (relative to this one when possible), "fingerprint": BaseFingerprint}
//	config.json                the base's config (so tools see the model's shape)
//
// plus, as any checkpoint, the tokenizer, optimizer.safetensors (the
// adapters' moments only) and trainer_state.json. Loading one loads the
// base and attaches the adapters; a base whose fingerprint differs from the
// one recorded is refused, naming both.
const (
	AdapterConfigFile = "adapter_config.json"
	AdapterModelFile  = "adapter_model.safetensors"
	AdapterBaseFile   = "adapter_base.json"
)

// peftConfig is the part of PEFT's adapter_config.json rljob writes and reads.
type peftConfig struct {
	PeftType          string   `json:"peft_type"`
	TaskType          string   `json:"task_type"`
	BaseModel         string   `json:"base_model_name_or_path"`
	R                 int      `json:"r"`
	LoraAlpha         float64  `json:"lora_alpha"`
	LoraDropout       float64  `json:"lora_dropout"`
	TargetModules     []string `json:"target_modules"`
	Bias              string   `json:"bias"`
	FanInFanOut       bool     `json:"fan_in_fan_out"`
	UseRSLoRA         bool     `json:"use_rslora"`
	UseDoRA           bool     `json:"use_dora"`
	InferenceMode     bool     `json:"inference_mode"`
	InitLoraWeights   bool     `json:"init_lora_weights"`
	ModulesToSave     []string `json:"modules_to_save"`
	LayersToTransform any      `json:"layers_to_transform"`
}

type adapterBase struct {
	Base        string `json:"base"`
	Fingerprint string `json:"fingerprint"`
}

// BaseFingerprint identifies a base checkpoint folder cheaply: SHA-256 of
// its config.json, the size of model.safetensors and its first and last
// MiB (the header with every tensor's name, shape and offset, and the
// first and last tensors' values).
func BaseFingerprint(dir string) (string, error) {
	if IsLightDir(dir) {
		return lightFingerprint(dir)
	}
	h := sha256.New()
	cfg, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return "", err
	}
	h.Write(cfg)
	f, err := os.Open(filepath.Join(dir, ModelFile))
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "\x00%d\x00", st.Size())
	const part = 1 << 20
	if _, err := io.Copy(h, io.LimitReader(f, part)); err != nil {
		return "", err
	}
	if st.Size() > part {
		if _, err := io.Copy(h, io.NewSectionReader(f, max(part, st.Size()-part), part)); err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32], nil
}

// peftModules are PEFT's target_modules for cfg's targets.
func peftModules(cfg LoRAConfig) []string {
	var out []string
	for _, t := range cfg.Targets {
		mod := loraModules[loraTargetIndex(t)]
		out = append(out, mod[strings.IndexByte(mod, '.')+1:])
	}
	return out
}

// writeAdapter writes the adapter files of lo through put; dest is the
// folder they go to ("" if unknown), for a relative path to the base.
func (lo *LoRA) writeAdapter(put func(string, func(io.Writer) error) error, dest string) error {
	base := lo.Base
	if abs, err := filepath.Abs(base); err == nil && base != "" && fileExists(base) {
		base = abs // a folder: never relative to the working directory
		if d, err := filepath.Abs(dest); err == nil && dest != "" {
			if rel, err := filepath.Rel(d, abs); err == nil {
				base = rel
			}
		}
	}
	pc := peftConfig{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: base, R: lo.Config.Rank, LoraAlpha: lo.Config.Alpha,
		LoraDropout: lo.Config.Dropout, TargetModules: peftModules(lo.Config), Bias: "none", InferenceMode: true, InitLoraWeights: true}
	files := []struct {
		name string
		v    any
	}{{AdapterConfigFile, pc}, {AdapterBaseFile, adapterBase{Base: base, Fingerprint: lo.BaseFP}}}
	for _, f := range files {
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if err := put(f.name, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return fmt.Errorf("trainer: write %s: %w", f.name, err)
		}
	}
	ts := make([]safetensors.Tensor, len(lo.Table))
	for i, t := range lo.Table {
		ts[i] = safetensors.Tensor{Name: t.Name, Shape: t.Shape, Data: lo.Params[t.Offset : t.Offset+t.Size]}
	}
	if err := put(AdapterModelFile, func(w io.Writer) error {
		return safetensors.Write(w, ts, map[string]string{"format": "pt"})
	}); err != nil {
		return fmt.Errorf("trainer: write %s: %w", AdapterModelFile, err)
	}
	return nil
}

// IsAdapterDir reports whether dir holds a PEFT adapter.
func IsAdapterDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, AdapterConfigFile))
	return err == nil
}

// readPEFTConfig reads and checks dir/adapter_config.json.
func readPEFTConfig(dir string) (peftConfig, LoRAConfig, error) {
	path := filepath.Join(dir, AdapterConfigFile)
	var pc peftConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return pc, LoRAConfig{}, err
	}
	if err := json.Unmarshal(b, &pc); err != nil {
		return pc, LoRAConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	unsupported := ""
	switch {
	case pc.PeftType != "LORA":
		unsupported = fmt.Sprintf("peft_type %q (only LORA)", pc.PeftType)
	case pc.UseRSLoRA:
		unsupported = "use_rslora"
	case pc.UseDoRA:
		unsupported = "use_dora"
	case pc.FanInFanOut:
		unsupported = "fan_in_fan_out"
	case pc.Bias != "" && pc.Bias != "none":
		unsupported = fmt.Sprintf("bias %q", pc.Bias)
	case len(pc.ModulesToSave) > 0:
		unsupported = "modules_to_save"
	case pc.LayersToTransform != nil:
		unsupported = "layers_to_transform"
	}
	if unsupported != "" {
		return pc, LoRAConfig{}, fmt.Errorf("%s: %s is not supported by rljob's LoRA", path, unsupported)
	}
	targets, err := ParseLoRATargets(strings.Join(pc.TargetModules, ","))
	if err != nil {
		return pc, LoRAConfig{}, fmt.Errorf("%s: target_modules: %w", path, err)
	}
	cfg := LoRAConfig{Rank: pc.R, Alpha: pc.LoraAlpha, Targets: targets}
	if err := cfg.Validate(); err != nil {
		return pc, LoRAConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return pc, cfg, nil
}

// AdapterBase returns the base folder an adapter folder names
// (adapter_base.json, else adapter_config.json's base_model_name_or_path),
// resolved against dir when relative, and the recorded fingerprint ("" if none).
func AdapterBase(dir string) (base, fp string, err error) {
	pc, _, err := readPEFTConfig(dir)
	if err != nil {
		return "", "", err
	}
	base = pc.BaseModel
	if b, err := os.ReadFile(filepath.Join(dir, AdapterBaseFile)); err == nil {
		var ab adapterBase
		if err := json.Unmarshal(b, &ab); err != nil {
			return "", "", fmt.Errorf("%s: %w", filepath.Join(dir, AdapterBaseFile), err)
		}
		base, fp = ab.Base, ab.Fingerprint
	}
	if base == "" {
		return "", "", fmt.Errorf("%s names no base model (base_model_name_or_path is empty)", filepath.Join(dir, AdapterConfigFile))
	}
	if !filepath.IsAbs(base) {
		base = filepath.Join(dir, base)
	}
	return filepath.Clean(base), fp, nil
}

// loadAdapterModel loads the base an adapter folder names and attaches
// the adapters (LoadAdapter).
func loadAdapterModel(dir string) (*Model, error) {
	base, fp, err := AdapterBase(dir)
	if err != nil {
		return nil, fmt.Errorf("trainer: load adapter: %w", err)
	}
	if IsAdapterDir(base) {
		return nil, fmt.Errorf("trainer: load adapter %s: its base %s is itself an adapter (merge it first: rljob export --merged)", dir, base)
	}
	m, err := loadModel(base)
	if err != nil {
		return nil, fmt.Errorf("trainer: load adapter %s: base %s: %w", dir, base, err)
	}
	if fp != "" {
		got, err := BaseFingerprint(base)
		if err != nil {
			return nil, fmt.Errorf("trainer: load adapter %s: base %s: %w", dir, base, err)
		}
		if got != fp {
			return nil, fmt.Errorf("trainer: adapter %s was trained on a base with fingerprint %s, but %s has %s: not the same base model", dir, fp, base, got)
		}
	}
	if err := LoadAdapter(m, dir, base, fp); err != nil {
		m.Release()
		return nil, err
	}
	return m, nil
}

// LoadAdapter reads the PEFT adapter in dir onto m (which becomes frozen
// under it). Every tensor must be there with the shape m's config gives
// it; an adapter made for another model is refused naming both.
func LoadAdapter(m *Model, dir, base, baseFP string) error {
	_, cfg, err := readPEFTConfig(dir)
	if err != nil {
		return fmt.Errorf("trainer: load adapter: %w", err)
	}
	lo, err := newLoRAZero(m.Config, cfg)
	if err != nil {
		return err
	}
	lo.Base, lo.BaseFP = base, baseFP
	path := filepath.Join(dir, AdapterModelFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		lo.release(m.be)
		return fmt.Errorf("trainer: load adapter: %w", err)
	}
	defer f.Close()
	for _, t := range lo.Table {
		if err := readTensor(f, t, lo.Params[t.Offset:t.Offset+t.Size], []string{"F32", "BF16", "F16"}); err != nil {
			lo.release(m.be)
			return fmt.Errorf("trainer: adapter %s does not fit base %s (%s, %d layers, hidden %d): %w", dir, base, m.Config.ModelType, m.Config.NumLayers, m.Config.HiddenSize, err)
		}
	}
	if n := len(f.Names()); n != len(lo.Table) {
		lo.release(m.be)
		return fmt.Errorf("trainer: adapter %s has %d tensors, base %s with targets %v wants %d: not an adapter of this base", path, n, base, cfg.Targets, len(lo.Table))
	}
	if !finite(lo.Params) {
		lo.release(m.be)
		return fmt.Errorf("trainer: adapter %s contains NaN or Inf", path)
	}
	m.attachLoRA(lo)
	return nil
}

// ExportMerged writes a plain HF checkpoint of ck into the new folder dir:
// config.json, model.safetensors with the adapters merged into the base
// weights (Model.MergeLoRA), and the tokenizer. ck's model keeps its
// adapters (a copy is merged).
func ExportMerged(ck *Checkpoint, dir string) error {
	m := ck.Model
	cp, err := newModelZero(m.Config)
	if err != nil {
		return err
	}
	defer cp.Release()
	copy(cp.Params, m.host(m.Params))
	cp.be.FromHost(cp.Params)
	cp.VocabLimit = m.VocabLimit
	if lo := m.LoRA; lo != nil {
		cl, err := newLoRAZero(m.Config, lo.Config)
		if err != nil {
			return err
		}
		copy(cl.Params, m.host(lo.Params))
		cp.attachLoRA(cl)
		cp.MergeLoRA()
	}
	return SaveCheckpointAtomic(dir, &Checkpoint{Model: cp, Tokenizer: ck.Tokenizer})
}

// ExportAdapter writes ck's adapters as a PEFT adapter folder dir
// (adapter_config.json with base_model_name_or_path = base, or the
// adapter's own base when base is "", and adapter_model.safetensors),
// which PEFT's PeftModel.from_pretrained loads.
func ExportAdapter(ck *Checkpoint, dir, base string) error {
	lo := ck.Model.LoRA
	if lo == nil {
		return fmt.Errorf("trainer: export adapter: the checkpoint has no LoRA adapters")
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("trainer: export adapter %s: %w", dir, fs.ErrExist)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ck.Model.host(lo.Params)
	cp := *lo
	if base != "" {
		cp.Base = base
	}
	return cp.writeAdapter(func(name string, write func(io.Writer) error) error {
		return writeFileSync(filepath.Join(dir, name), write)
	}, "")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
