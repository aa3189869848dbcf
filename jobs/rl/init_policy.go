package rl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"rljob/arrowio"
	"rljob/jobs"
	"rljob/trainer"
	"rljob/trainer/tokenizer"
)

func init() {
	jobs.Register(initPolicyStage{})
	jobs.Register(sftStage{})
	jobs.Register(rolloutStage{})
	jobs.Register(trainStage{})
}

// initPolicyStage creates a run's first checkpoint.
type initPolicyStage struct{}

func (initPolicyStage) Spec() jobs.StageSpec {
	return jobs.StageSpec{
		Name: "init_policy",
		Doc: "Create a fresh policy — a Llama-family model with every matrix ~ N(0, 0.02²), norm gains 1 — from a named " +
			"config or an HF config.json, with a tokenizer, and commit it as this step's checkpoint " +
			"checkpoints/run=R/step=S (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, trainer_state.json). " +
			"Named configs (vocab_size = the tokenizer's): tiny = 2 layers, hidden 64, 4 heads (2 kv), MLP 192, 256 positions; " +
			"small = 4 layers, hidden 128, 4 heads (2 kv), MLP 384, 512 positions; both tied embeddings. " +
			"A run starts with init_policy: it is an error when the run already has a checkpoint before this step, and a " +
			"step holds one checkpoint, so put sft in a later step. Runs on shard 0 only.",
		Args: []jobs.ArgSpec{
			{Name: "config", Type: jobs.TypeString, Default: "tiny",
				Doc: "'tiny', 'small', or the path of an HF config.json (or of a folder holding one) of a llama/qwen2 model; its vocab_size must cover the tokenizer"},
			{Name: "tokenizer", Type: jobs.TypeString, Required: true,
				Doc: "'chars:<symbols>' for a character tokenizer over those symbols (plus <|pad|> <|bos|> <|eos|> <|unk|>), or the path of an HF tokenizer.json (or of a folder holding one)"},
			{Name: "seed", Type: jobs.TypeInt, DefaultDoc: "derived from --seed, step and call",
				Doc: "seed of the weight initialisation"},
		},
		Outputs: func(jobs.Args) []string { return []string{arrowio.TableCheckpoints} },
		Check: func(a jobs.Args) (string, string) {
			if t := a.String("tokenizer"); strings.TrimSpace(t) == "" || t == "chars:" {
				return "tokenizer is empty", "tokenizer := 'chars:0123456789+-=' or a path to tokenizer.json"
			}
			return "", ""
		},
	}
}

// Run builds the tokenizer, then the config (vocab_size from the tokenizer
// for named configs), initialises the weights with the seed and commits the
// checkpoint. No optimizer state is written: sft and train start fresh
// AdamW moments from it.
func (initPolicyStage) Run(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) (jobs.Summary, error) {
	// Inputs.
	tok, err := makeTokenizer(a.String("tokenizer"))
	if err != nil {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.Pos("tokenizer"), Msg: "init_policy: " + err.Error(),
			Hint: "tokenizer := 'chars:<symbols>' or the path of a tokenizer.json"}
	}
	cfg, err := makeConfig(a.String("config"), tok.VocabSize())
	if err != nil {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.Pos("config"), Msg: "init_policy: " + err.Error(),
			Hint: fmt.Sprintf("config := one of %s, or the path of an HF config.json", strings.Join(trainer.NamedConfigs, ", "))}
	}
	seed := sc.SeedFor()
	if a.Has("seed") {
		seed = a.Int("seed")
	}

	// Checks: init_policy starts a run.
	steps, err := checkpointSteps(sc.Lake, sc.Run)
	if err != nil {
		return jobs.Summary{}, err
	}
	if len(steps) > 0 && steps[0] < sc.Step {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.CallPos(),
			Msg:  fmt.Sprintf("init_policy: run %q already has checkpoints (first at step %d); init_policy starts a run", sc.Run, steps[0]),
			Hint: "use a new --run name, or drop init_policy from this job"}
	}
	if err := checkStepFree(sc, a); err != nil {
		return jobs.Summary{}, err
	}

	// Work.
	model, err := trainer.NewModel(cfg, uint64(seed))
	if err != nil {
		return jobs.Summary{}, errf("init_policy: %w", err)
	}

	// Outputs.
	ck := &trainer.Checkpoint{Model: model, Tokenizer: tok, State: trainerState(sc, nil, trainer.Schedule{Kind: "constant"}, seed, -1)}
	if err := commitCheckpoint(sc, a, ck, ""); err != nil {
		return jobs.Summary{}, err
	}

	// Summary.
	return jobs.Summary{Table: arrowio.TableCheckpoints, Rows: 1,
		Note:    fmt.Sprintf("init_policy: %s model, %d layers, hidden %d, vocab %d", cfg.ModelType, cfg.NumLayers, cfg.HiddenSize, cfg.VocabSize),
		Metrics: map[string]float64{"params": float64(len(model.Params)), "vocab": float64(cfg.VocabSize)}}, nil
}

// makeTokenizer builds 'chars:<symbols>' or loads a tokenizer.json (a file,
// or a folder with tokenizer.json and optionally tokenizer_config.json).
func makeTokenizer(spec string) (tokenizer.Tokenizer, error) {
	if syms, ok := strings.CutPrefix(spec, "chars:"); ok {
		return tokenizer.NewChars(syms)
	}
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return tokenizer.LoadDir(spec)
	}
	return tokenizer.Load(spec)
}

// makeConfig returns a named config with vocab_size = vocab, or parses an
// HF config.json (a file or a folder holding one) whose vocab_size must be
// at least vocab.
func makeConfig(spec string, vocab int) (trainer.Config, error) {
	for _, n := range trainer.NamedConfigs {
		if spec == n {
			return trainer.NamedConfig(n, vocab)
		}
	}
	path := spec
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		path = filepath.Join(spec, trainer.ConfigFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return trainer.Config{}, fmt.Errorf("config %q is not a named config (%s) nor a readable config.json: %w", spec, strings.Join(trainer.NamedConfigs, ", "), err)
	}
	var raw map[string]any
	if json.Unmarshal(data, &raw) == nil {
		if _, ok := raw["vocab_size"]; !ok {
			// A config without vocab_size takes the tokenizer's.
			raw["vocab_size"] = vocab
			data, _ = json.Marshal(raw)
		}
	}
	cfg, err := trainer.ParseConfig(data)
	if err != nil {
		return trainer.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.VocabSize < vocab {
		return trainer.Config{}, fmt.Errorf("%s: vocab_size %d is smaller than the tokenizer's %d tokens", path, cfg.VocabSize, vocab)
	}
	return cfg, nil
}
