package rl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
	"github.com/rljob/rljob/trainer/tokenizer"
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
			"config or an HF config.json, with a tokenizer, and commit it as a checkpoint " +
			"checkpoints/run=R/step=S/part-<call>-0 (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, trainer_state.json). " +
			"With policy, the weights and tokenizer of an existing checkpoint are used instead (another run's, e.g. an SFT run " +
			"shared by several RL seeds, or an HF model folder; F16/BF16 weights are converted to dtype's), without its optimizer state. " +
			"Named configs (vocab_size = the tokenizer's): tiny = 2 layers, hidden 64, 4 heads (2 kv), MLP 192, 256 positions; " +
			"small = 4 layers, hidden 128, 4 heads (2 kv), MLP 384, 512 positions; both tied embeddings. " +
			"A run starts with init_policy: it is an error when the run already has a checkpoint before this call " +
			"(use when := to make it conditional). Also commits metrics policy/params and timing_s/init_policy. " +
			"Runs on shard 0 only.",
		Args: []jobs.ArgSpec{
			{Name: "config", Type: jobs.TypeString, Default: "tiny",
				Doc: "'tiny', 'small', or the path of an HF config.json (or of a folder holding one) of a llama/qwen2 model; its vocab_size must cover the tokenizer"},
			{Name: "tokenizer", Type: jobs.TypeString,
				Doc: "'chars:<symbols>' for a character tokenizer over those symbols (plus <|pad|> <|bos|> <|eos|> <|unk|>), or the path of an HF tokenizer.json (or of a folder holding one); required unless policy is given"},
			{Name: "policy", Type: jobs.TypeString,
				Doc: "start from an existing checkpoint instead: 'run=NAME' (that run's newest checkpoint in a complete step), 'run=NAME/step=K', or a folder (relative to the job file) with config.json, model.safetensors and tokenizer.json"},
			{Name: "seed", Type: jobs.TypeInt, DefaultDoc: "derived from --seed, step and call",
				Doc: "seed of the weight initialisation"},
			dtypeArgSpec(trainer.DTypeFP32),
		},
		// metrics too: the checkpoint unit is the whole step folder, so only
		// this call's own metrics unit tells the runner that it (and not
		// another call of the step) has run.
		Outputs: func(jobs.Args) []string { return []string{arrowio.TableCheckpoints, arrowio.TableMetrics} },
		Check: func(a jobs.Args) (string, string) {
			if a.Has("policy") {
				if a.Given("tokenizer") || a.Given("config") || a.Given("seed") {
					return "policy takes the model, tokenizer and weights of a checkpoint: drop config, tokenizer and seed", ""
				}
				return "", ""
			}
			if t := a.String("tokenizer"); strings.TrimSpace(t) == "" || t == "chars:" {
				return "init_policy needs a tokenizer (or policy)", "tokenizer := 'chars:0123456789+-=' or a path to tokenizer.json"
			}
			return "", ""
		},
	}
}

// Run builds the tokenizer, then the config (vocab_size from the tokenizer
// for named configs), initialises the weights with the seed and commits the
// checkpoint; or, with from, loads a checkpoint's weights and tokenizer. No
// optimizer state is written: sft and train start fresh AdamW moments.
func (initPolicyStage) Run(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) (jobs.Summary, error) {
	t0 := time.Now()
	if a.Has("policy") {
		return initFrom(ctx, sc, a, t0)
	}
	// Inputs.
	tok, err := makeTokenizer(sc, a)
	if err != nil {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.Pos("tokenizer"), Msg: "init_policy: " + err.Error(),
			Hint: "tokenizer := 'chars:<symbols>' or the path of a tokenizer.json"}
	}
	cfgSpec := a.String("config")
	if !slices.Contains(trainer.NamedConfigs, cfgSpec) {
		cfgSpec = sc.Path("config", cfgSpec)
	}
	cfg, err := makeConfig(cfgSpec, tok.VocabSize())
	if err != nil {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.Pos("config"), Msg: "init_policy: " + err.Error(),
			Hint: fmt.Sprintf("config := one of %s, or the path of an HF config.json", strings.Join(trainer.NamedConfigs, ", "))}
	}
	seed := sc.SeedFor()
	if a.Has("seed") {
		seed = a.Int("seed")
	}

	// Checks: init_policy starts a run.
	if err := checkRunStart(sc, a); err != nil {
		return jobs.Summary{}, err
	}

	// Work.
	model, err := trainer.NewModel(cfg, uint64(seed))
	if err != nil {
		return jobs.Summary{}, errf("init_policy: %w", err)
	}
	if err := applyDType(sc, a, model); err != nil {
		return jobs.Summary{}, err
	}

	// Outputs.
	ck := &trainer.Checkpoint{Model: model, Tokenizer: tok, State: trainerState(sc, nil, trainer.Schedule{Kind: "constant"}, seed, -1)}
	if err := commitCheckpoint(sc, a, ck, ""); err != nil {
		return jobs.Summary{}, err
	}
	if _, err := commitMetrics(ctx, sc, map[string]float64{"policy/params": float64(len(model.Params)), "timing_s/init_policy": time.Since(t0).Seconds()}, t0); err != nil {
		return jobs.Summary{}, err
	}

	// Summary.
	return jobs.Summary{Table: arrowio.TableCheckpoints, Rows: 1,
		Note:    fmt.Sprintf("init_policy: %s model, %d layers, hidden %d, vocab %d", cfg.ModelType, cfg.NumLayers, cfg.HiddenSize, cfg.VocabSize),
		Metrics: map[string]float64{"params": float64(len(model.Params)), "vocab": float64(cfg.VocabSize)}}, nil
}

// checkRunStart: init_policy starts a run, so the run may have no
// checkpoint before this call.
func checkRunStart(sc *jobs.StageCtx, a jobs.Args) error {
	units, err := visibleCheckpoints(sc)
	if err != nil {
		return err
	}
	if len(units) > 0 {
		return &jobs.UsageError{Pos: a.CallPos(),
			Msg:  fmt.Sprintf("init_policy: run %q already has checkpoints (first at step %d); init_policy starts a run", sc.Run, units[0].Step),
			Hint: "use a new --run name, or drop init_policy from this job (when := can make it conditional)"}
	}
	return nil
}

// initFrom commits the weights and tokenizer of the checkpoint named by
// from as this run's first checkpoint.
func initFrom(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, t0 time.Time) (jobs.Summary, error) {
	// Inputs.
	dir, err := resolveFrom(sc, a)
	if err != nil {
		return jobs.Summary{}, err
	}
	ck, err := trainer.LoadCheckpoint(dir)
	if err != nil {
		return jobs.Summary{}, &jobs.DataError{Pos: a.Pos("policy"), Msg: "init_policy: load " + dir, File: dir, Err: err}
	}
	if ck.Tokenizer == nil {
		return jobs.Summary{}, &jobs.DataError{Pos: a.Pos("policy"), Msg: fmt.Sprintf("init_policy: %s has no %s", dir, trainer.TokenizerFile), File: dir}
	}

	// Checks.
	if err := checkRunStart(sc, a); err != nil {
		return jobs.Summary{}, err
	}
	if err := applyDType(sc, a, ck.Model); err != nil {
		return jobs.Summary{}, err
	}

	// Outputs: weights and tokenizer only (fresh optimizer downstream).
	seed := int64(0)
	if ck.State != nil {
		seed = int64(ck.State.Seed)
	}
	out := &trainer.Checkpoint{Model: ck.Model, Tokenizer: ck.Tokenizer, State: trainerState(sc, nil, trainer.Schedule{Kind: "constant"}, seed, -1)}
	out.State.Extra["from"] = lakeRel(sc.Lake, dir)
	if err := commitCheckpoint(sc, a, out, dir); err != nil {
		return jobs.Summary{}, err
	}
	if _, err := commitMetrics(ctx, sc, map[string]float64{"policy/params": float64(len(ck.Model.Params)), "timing_s/init_policy": time.Since(t0).Seconds()}, t0); err != nil {
		return jobs.Summary{}, err
	}
	c := ck.Model.Config
	return jobs.Summary{Table: arrowio.TableCheckpoints, Rows: 1,
		Note:    fmt.Sprintf("init_policy: from %s (%s, %d layers, hidden %d)", dir, c.ModelType, c.NumLayers, c.HiddenSize),
		Metrics: map[string]float64{"params": float64(len(ck.Model.Params))}}, nil
}

// resolveFrom turns from ('run=NAME', 'run=NAME/step=K' or a folder) into
// a checkpoint folder.
func resolveFrom(sc *jobs.StageCtx, a jobs.Args) (string, error) {
	v := strings.TrimSpace(a.String("policy"))
	bad := func(msg string) error {
		return &jobs.UsageError{Pos: a.Pos("policy"), Msg: fmt.Sprintf("init_policy: policy := '%s': %s", v, msg),
			Hint: "policy := 'run=NAME', 'run=NAME/step=K' or a folder with config.json, model.safetensors and tokenizer.json"}
	}
	if rest, ok := strings.CutPrefix(v, "run="); ok {
		run, stepStr, hasStep := strings.Cut(rest, "/")
		if err := arrowio.ValidatePartitionValue(run); err != nil {
			return "", bad(err.Error())
		}
		if run == sc.Run {
			return "", bad("a run cannot start from itself")
		}
		units, err := sc.Lake.Units(arrowio.TableCheckpoints, run)
		if err != nil {
			return "", err
		}
		status, err := sc.Lake.ReadStepStatus(run)
		if err != nil {
			return "", bad(err.Error())
		}
		for i := len(units) - 1; i >= 0; i-- {
			u := units[i]
			if !status.Complete[u.Step] || hasStep && "step="+strconv.FormatInt(u.Step, 10) != stepStr {
				continue // other runs are seen at their complete steps only
			}
			return sc.Lake.Path(u.Dir()), nil
		}
		return "", bad(fmt.Sprintf("run %q has no such checkpoint in a complete step in lake %s", run, sc.Lake.Root))
	}
	abs, err := filepath.Abs(sc.Path("policy", v))
	if err != nil {
		return "", bad(err.Error())
	}
	for _, f := range []string{trainer.ConfigFile, trainer.ModelFile, trainer.TokenizerFile} {
		if st, err := os.Stat(filepath.Join(abs, f)); err != nil || st.IsDir() {
			return "", bad(fmt.Sprintf("no checkpoint at %s (%s missing)", abs, f))
		}
	}
	return abs, nil
}

// makeTokenizer builds 'chars:<symbols>' or loads a tokenizer.json (a file,
// or a folder with tokenizer.json and optionally tokenizer_config.json).
func makeTokenizer(sc *jobs.StageCtx, a jobs.Args) (tokenizer.Tokenizer, error) {
	spec := a.String("tokenizer")
	if syms, ok := strings.CutPrefix(spec, "chars:"); ok {
		return tokenizer.NewChars(syms)
	}
	spec = sc.Path("tokenizer", spec)
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
