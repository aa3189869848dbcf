package trainer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/rljob/rljob/trainer/safetensors"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// Checkpoint file names (HF layout, plus the optimizer and trainer state
// needed to resume training bit for bit).
const (
	ConfigFile       = "config.json"
	ModelFile        = "model.safetensors"
	TokenizerFile    = "tokenizer.json"
	TokenizerConfig  = "tokenizer_config.json"
	OptimizerFile    = "optimizer.safetensors"
	TrainerStateFile = "trainer_state.json"
)

// TrainerState is trainer_state.json: what resuming needs besides the
// weights and the AdamW moments.
type TrainerState struct {
	Step     int      `json:"step"` // optimizer updates made (equals AdamW.Step)
	Schedule Schedule `json:"schedule"`
	AdamW    AdamW    `json:"adamw"` // hyper-parameters (the moments are in optimizer.safetensors)
	Seed     uint64   `json:"seed"`
	// RNG is an optional marshalled generator state (e.g. rand.PCG's
	// MarshalBinary) for a caller whose data order is drawn from a stream.
	RNG []byte `json:"rng,omitempty"`
	// Extra holds the caller's own fields (data cursor, run name, ...).
	Extra map[string]any `json:"extra,omitempty"`
	// Light is set in a light checkpoint (no weights: see IsLightDir).
	Light *LightRecord `json:"light,omitempty"`
}

// Checkpoint is everything in a checkpoint directory. Opt, State and
// Tokenizer are optional: a nil Opt writes no optimizer.safetensors, a nil
// State no trainer_state.json, a nil Tokenizer no tokenizer.json and
// tokenizer_config.json (both written by tokenizer.SaveDir, read back by
// tokenizer.LoadDir, as HF's AutoTokenizer reads them).
type Checkpoint struct {
	Model     *Model
	Opt       *AdamW
	State     *TrainerState
	Tokenizer tokenizer.Tokenizer
	// Dir is the folder the files go to, when known (SaveCheckpoint sets
	// it): a LoRA checkpoint names its base relative to it.
	Dir string
}

// Optimizer tensor names: the parameter's name with a prefix, plus "step".
const (
	optMPrefix = "exp_avg."    // AdamW first moment m
	optVPrefix = "exp_avg_sq." // AdamW second moment v
	optStep    = "step"        // scalar, the number of updates made
)

// WriteFiles writes the checkpoint file by file through put, which must
// create the named file in the destination and call write on it. It lets
// any writer (a directory, the lake's staging area) receive a checkpoint.
func (ck *Checkpoint) WriteFiles(put func(name string, write func(w io.Writer) error) error) error {
	if ck.Model == nil {
		return fmt.Errorf("trainer: checkpoint has no model")
	}
	m := ck.Model
	m.host(m.Params) // the backend's newer values (Backend.Keep)
	if m.LoRA != nil {
		m.host(m.LoRA.Params)
	}
	cfg, err := m.Config.marshalHF(torchDType(m.DType))
	if err != nil {
		return err
	}
	if err := put(ConfigFile, func(w io.Writer) error { _, err := w.Write(cfg); return err }); err != nil {
		return fmt.Errorf("trainer: write %s: %w", ConfigFile, err)
	}
	if m.LoRA != nil { // the adapters only: the base is frozen and named
		if err := m.LoRA.writeAdapter(put, ck.Dir); err != nil {
			return err
		}
	} else {
		tensors := make([]safetensors.Tensor, len(m.Table))
		for i, t := range m.Table {
			tensors[i] = safetensors.Tensor{Name: t.Name, DType: m.fileDType(), Shape: t.Shape, Data: m.Params[t.Offset : t.Offset+t.Size]}
		}
		if err := put(ModelFile, func(w io.Writer) error {
			return safetensors.Write(w, tensors, map[string]string{"format": "pt"})
		}); err != nil {
			return fmt.Errorf("trainer: write %s: %w", ModelFile, err)
		}
	}
	if ck.Tokenizer != nil {
		files, err := tokenizerFiles(ck.Tokenizer)
		if err != nil {
			return err
		}
		for _, name := range []string{TokenizerFile, TokenizerConfig} {
			data := files[name]
			if err := put(name, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return fmt.Errorf("trainer: write %s: %w", name, err)
			}
		}
	}
	if o := ck.Opt; o != nil {
		table, n := m.trainTable()
		if err := o.SyncMoments(); err != nil {
			return fmt.Errorf("trainer: write %s: %w", OptimizerFile, err)
		}
		if len(o.M) != n || len(o.V) != n {
			return fmt.Errorf("trainer: write %s: moments have %d/%d values, trained parameters %d", OptimizerFile, len(o.M), len(o.V), n)
		}
		ot := make([]safetensors.Tensor, 0, 2*len(table)+1)
		for _, t := range table {
			e := t.Offset + t.Size
			ot = append(ot,
				safetensors.Tensor{Name: optMPrefix + t.Name, Shape: t.Shape, Data: o.M[t.Offset:e]},
				safetensors.Tensor{Name: optVPrefix + t.Name, Shape: t.Shape, Data: o.V[t.Offset:e]})
		}
		ot = append(ot, m.masterTensors()...)
		ot = append(ot, safetensors.Tensor{Name: optStep, Data: []float32{float32(o.Step)}})
		meta := map[string]string{"step": strconv.Itoa(o.Step), "optimizer": "adamw"}
		if err := put(OptimizerFile, func(w io.Writer) error { return safetensors.Write(w, ot, meta) }); err != nil {
			return fmt.Errorf("trainer: write %s: %w", OptimizerFile, err)
		}
	}
	if ck.State != nil {
		st, err := json.MarshalIndent(ck.State, "", "  ")
		if err != nil {
			return fmt.Errorf("trainer: write %s: %w", TrainerStateFile, err)
		}
		st = append(st, '\n')
		if err := put(TrainerStateFile, func(w io.Writer) error { _, err := w.Write(st); return err }); err != nil {
			return fmt.Errorf("trainer: write %s: %w", TrainerStateFile, err)
		}
	}
	return nil
}

// SaveCheckpoint writes the checkpoint's files into dir, which must exist
// (e.g. the lake's staging folder: the lake's rename then makes the
// checkpoint appear atomically). Each file is fsynced; dir is not.
func SaveCheckpoint(dir string, ck *Checkpoint) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("trainer: save checkpoint: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("trainer: save checkpoint: %s is not a directory", dir)
	}
	c := *ck
	c.Dir = dir
	return c.WriteFiles(func(name string, write func(io.Writer) error) error {
		return writeFileSync(filepath.Join(dir, name), write)
	})
}

// SaveCheckpointAtomic publishes the checkpoint as the new directory dir:
// it writes into a temporary sibling, fsyncs every file and the folder,
// renames it to dir and fsyncs the parent. Readers see no dir or a
// complete one. dir must not exist yet (the error wraps fs.ErrExist).
func SaveCheckpointAtomic(dir string, ck *Checkpoint) error {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("trainer: save checkpoint %s: %w", dir, fs.ErrExist)
	}
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("trainer: save checkpoint %s: %w", dir, err)
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return fmt.Errorf("trainer: save checkpoint %s: %w", dir, err)
	}
	if err := SaveCheckpoint(tmp, ck); err != nil {
		return fail(err)
	}
	if err := syncDir(tmp); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, os.ErrExist) {
			return fail(fmt.Errorf("%w (created concurrently)", fs.ErrExist))
		}
		return fail(err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("trainer: save checkpoint %s: sync parent: %w", dir, err)
	}
	return nil
}

// writeFileSync creates path, fills it through write, fsyncs and closes it.
func writeFileSync(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// ignoredTensor matches tensors some HF checkpoints carry that are not
// parameters (rotary caches of older transformers versions).
var ignoredTensor = regexp.MustCompile(`\.rotary_emb\.inv_freq$`)

// LoadModel reads dir/config.json and dir/model.safetensors. Every
// parameter of the table must be present with its exact shape, in F32,
// BF16 or F16 (converted to float32); a missing, misshapen, unknown or
// unreadable tensor is an error naming it. With tied embeddings an
// lm_head.weight in the file is ignored (HF writes it in some versions).
// When dir also holds a tokenizer.json with fewer tokens than vocab_size,
// VocabLimit is set to its size (as LoadCheckpoint does), so that a
// reference model normalises its log-probs over the same ids as the
// policy.
func LoadModel(dir string) (*Model, error) {
	m, err := loadModel(dir)
	if err != nil {
		return nil, err
	}
	if tokDir := TokenizerDir(dir); fileExists(filepath.Join(tokDir, TokenizerFile)) {
		tok, err := tokenizer.LoadDir(tokDir)
		if err != nil {
			return nil, fmt.Errorf("trainer: load model %s: %w", dir, err)
		}
		if v := tok.VocabSize(); v < m.Config.VocabSize {
			m.VocabLimit = v
		}
	}
	return m, nil
}

// loadModel is LoadModel without the tokenizer. A folder holding a PEFT
// adapter loads its base with the adapters attached; a light checkpoint is
// replayed (LightLoader).
func loadModel(dir string) (*Model, error) {
	if IsLightDir(dir) {
		ck, err := loadLight(dir)
		if err != nil {
			return nil, err
		}
		ck.Opt.Release()
		return ck.Model, nil
	}
	if IsAdapterDir(dir) {
		return loadAdapterModel(dir)
	}
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	m, err := newModelZero(cfg)
	if err != nil {
		return nil, err
	}
	m.DType = configDType(filepath.Join(dir, ConfigFile))
	path := filepath.Join(dir, ModelFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		m.Release()
		return nil, fmt.Errorf("trainer: load model: %w", err)
	}
	defer f.Close()
	want := map[string]bool{}
	for _, t := range m.Table {
		want[t.Name] = true
		if err := readTensor(f, t, m.Params[t.Offset:t.Offset+t.Size], []string{"F32", "BF16", "F16"}); err != nil {
			return nil, fmt.Errorf("trainer: load model %s: %w", path, err)
		}
	}
	for _, name := range f.Names() {
		if want[name] || ignoredTensor.MatchString(name) || (cfg.TieWordEmbeddings && name == "lm_head.weight") {
			continue
		}
		return nil, fmt.Errorf("trainer: load model %s: unexpected tensor %q (config %s with %d layers)", path, name, cfg.ModelType, cfg.NumLayers)
	}
	if !finite(m.Params) {
		return nil, fmt.Errorf("trainer: load model %s: parameters contain NaN or Inf", path)
	}
	m.be.FromHost(m.Params)
	return m, nil
}

// readTensor checks t's dtype and shape in f and reads it into dst.
func readTensor(f *safetensors.File, t Tensor, dst []float32, dtypes []string) error {
	in, ok := f.Info(t.Name)
	if !ok {
		return fmt.Errorf("tensor %q missing", t.Name)
	}
	if !slices.Contains(dtypes, in.DType) {
		return fmt.Errorf("tensor %q has dtype %s, want one of %v", t.Name, in.DType, dtypes)
	}
	if !slices.Equal(in.Shape, t.Shape) {
		return fmt.Errorf("tensor %q has shape %v, want %v", t.Name, in.Shape, t.Shape)
	}
	if err := f.ReadInto(t.Name, dst); err != nil {
		return err
	}
	return nil
}

// LoadOptimizer reads dir/optimizer.safetensors into AdamW moments for m
// (hyper-parameters from state when given, else DefaultAdamW's). It returns
// (nil, nil) when the file does not exist.
func LoadOptimizer(dir string, m *Model, state *TrainerState) (*AdamW, error) {
	path := filepath.Join(dir, OptimizerFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: load optimizer: %w", err)
	}
	defer f.Close()
	table, n := m.trainTable()
	o := DefaultAdamW(n)
	if state != nil {
		h := state.AdamW
		o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.MaxGradNorm = h.Beta1, h.Beta2, h.Eps, h.WeightDecay, h.MaxGradNorm
	}
	for _, t := range table {
		e := t.Offset + t.Size
		for _, part := range []struct {
			prefix string
			buf    []float32
		}{{optMPrefix, o.M[t.Offset:e]}, {optVPrefix, o.V[t.Offset:e]}} {
			tt := t
			tt.Name = part.prefix + t.Name
			if err := readTensor(f, tt, part.buf, []string{"F32"}); err != nil {
				o.Release()
				return nil, fmt.Errorf("trainer: load optimizer %s: %w", path, err)
			}
		}
	}
	step, shape, err := f.Tensor(optStep)
	if err != nil {
		return nil, fmt.Errorf("trainer: load optimizer %s: %w", path, err)
	}
	if len(shape) != 0 || len(step) != 1 || step[0] < 0 || step[0] != float32(int(step[0])) {
		return nil, fmt.Errorf("trainer: load optimizer %s: tensor %q must be a non-negative integer scalar, got shape %v %v", path, optStep, shape, step)
	}
	o.Step = int(step[0])
	masters, err := m.readMasters(f)
	if err != nil {
		return nil, fmt.Errorf("trainer: load optimizer %s: %w", path, err)
	}
	if n := len(f.Names()); n != 2*len(table)+1+masters {
		return nil, fmt.Errorf("trainer: load optimizer %s: %d tensors, want %d (unexpected extra tensors)", path, n, 2*len(table)+1+masters)
	}
	return o, nil
}

// LoadCheckpoint reads a checkpoint directory written by SaveCheckpoint:
// the model (required), and the optimizer, trainer state and tokenizer
// document when present. When both exist, the optimizer's step must equal
// the trainer state's. A light checkpoint is replayed (LightLoader).
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	if IsLightDir(dir) {
		return loadLight(dir)
	}
	m, err := loadModel(dir)
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{Model: m}
	if data, err := os.ReadFile(filepath.Join(dir, TrainerStateFile)); err == nil {
		var st TrainerState
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("trainer: load checkpoint %s: %s: %w", dir, TrainerStateFile, err)
		}
		ck.State = &st
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trainer: load checkpoint %s: %w", dir, err)
	}
	if ck.Opt, err = LoadOptimizer(dir, m, ck.State); err != nil {
		return nil, err
	}
	if ck.Opt != nil && ck.State != nil && ck.Opt.Step != ck.State.Step {
		return nil, fmt.Errorf("trainer: load checkpoint %s: optimizer step %d != trainer_state step %d", dir, ck.Opt.Step, ck.State.Step)
	}
	tokDir := TokenizerDir(dir)
	if _, err := os.Stat(filepath.Join(tokDir, TokenizerFile)); err == nil {
		if ck.Tokenizer, err = tokenizer.LoadDir(tokDir); err != nil {
			return nil, fmt.Errorf("trainer: load checkpoint %s: %w", dir, err)
		}
		v := ck.Tokenizer.VocabSize()
		if v > m.Config.VocabSize {
			return nil, fmt.Errorf("trainer: load checkpoint %s: tokenizer has %d tokens, model vocab_size %d", dir, v, m.Config.VocabSize)
		}
		m.VocabLimit = v // a padded vocabulary's extra ids are masked
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trainer: load checkpoint %s: %w", dir, err)
	}
	return ck, nil
}

// tokenizerFiles returns the files tokenizer.SaveDir writes for t
// (tokenizer.json, tokenizer_config.json), by name, so that WriteFiles can
// hand them to any writer.
func tokenizerFiles(t tokenizer.Tokenizer) (map[string][]byte, error) {
	tmp, err := os.MkdirTemp("", "rljob-tokenizer-")
	if err != nil {
		return nil, fmt.Errorf("trainer: save tokenizer: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := tokenizer.SaveDir(t, tmp); err != nil {
		return nil, fmt.Errorf("trainer: save tokenizer: %w", err)
	}
	files := map[string][]byte{}
	for _, name := range []string{TokenizerFile, TokenizerConfig} {
		if files[name], err = os.ReadFile(filepath.Join(tmp, name)); err != nil {
			return nil, fmt.Errorf("trainer: save tokenizer: %w", err)
		}
	}
	return files, nil
}
