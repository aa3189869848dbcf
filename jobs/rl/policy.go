package rl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// policy is a checkpoint loaded for one stage call.
type policy struct {
	Model  *trainer.Model
	Opt    *trainer.AdamW        // nil when the checkpoint has no optimizer state
	State  *trainer.TrainerState // nil when it has no trainer_state.json
	Tok    tokenizer.Tokenizer   // from tokenizer.json (+ tokenizer_config.json)
	Dir    string                // where it was loaded from
	TokDir string                // the folder of its tokenizer files (Dir, or a light checkpoint's full ancestor)
	Step   int64                 // its step in this run; -1 for a folder outside the run
	Stage  string                // stage that wrote it (trainer_state extra "stage"); "" if unknown
}

// PolicyStep is the policy_step column value: nil (NULL) for a checkpoint
// outside this run.
func (p *policy) PolicyStep() *int64 {
	if p.Step < 0 {
		return nil
	}
	s := p.Step
	return &s
}

// checkpointUnit is the checkpoint unit of a call of run at step.
func checkpointUnit(run string, step int64, call int) arrowio.Unit {
	return arrowio.Unit{Table: arrowio.TableCheckpoints, Run: run, Step: step, Call: call}
}

// visibleCheckpoints lists the run's committed checkpoints that the call
// sees, oldest first: those of earlier steps, and those written by earlier
// calls of this step. A step may hold several (sft, then train).
func visibleCheckpoints(sc *jobs.StageCtx) ([]arrowio.Unit, error) {
	units, err := sc.Lake.Units(arrowio.TableCheckpoints, sc.Run)
	if err != nil {
		return nil, fmt.Errorf("rl: list checkpoints: %w", err)
	}
	var out []arrowio.Unit
	for _, u := range units {
		if u.Step < sc.Step || u.Step == sc.Step && u.Call < sc.Call {
			out = append(out, u)
		}
	}
	return out, nil
}

func init() { jobs.CurrentPolicy = latestPolicy }

// latestPolicy returns the folder that policy := 'latest' resolves to for
// the call sc (see resolvePolicy) and its tokenizer.json, or dir = "" when
// no checkpoint of the run is visible to the call. It is exec's
// RLJOB_POLICY_DIR and RLJOB_TOKENIZER (jobs.CurrentPolicy).
func latestPolicy(sc *jobs.StageCtx) (dir, tok string, err error) {
	units, err := visibleCheckpoints(sc)
	if err != nil || len(units) == 0 {
		return "", "", err
	}
	// absolute, so that a command that changes directory can still use it
	if dir, err = filepath.Abs(sc.Lake.Path(units[len(units)-1].Dir())); err != nil {
		return "", "", err
	}
	return dir, filepath.Join(trainer.TokenizerDir(dir), trainer.TokenizerFile), nil
}

// policyDoc documents every policy argument resolvePolicy reads.
const policyDoc = "'latest' (the run's newest checkpoint committed before this call), 'step=K' (checkpoint K of this run), " +
	"'run=X' or 'run=X/step=K' (run X's newest checkpoint in a complete step, or its checkpoint at step K) or a checkpoint folder"

// resolvePolicy turns the value of policy argument arg ('latest', 'step=K',
// 'run=X[/step=K]' or a folder) into a checkpoint folder and its step in
// this run (-1 for a checkpoint outside the run). 'latest' is the newest
// checkpoint committed before this call (an earlier step, or an earlier
// call of this step); 'step=K' the newest of step K; 'run=X' another run's
// newest checkpoint in a complete step (other runs are seen at their
// complete steps only), 'run=X/step=K' its checkpoint at step K. A name
// that resolves to nothing is a UsageError at the argument.
func resolvePolicy(sc *jobs.StageCtx, a jobs.Args, arg string) (dir string, step int64, err error) {
	v := strings.TrimSpace(a.String(arg))
	bad := func(msg, hint string) error {
		return &jobs.UsageError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: %s := '%s': %s", sc.Stage, arg, v, msg), Hint: hint}
	}
	switch {
	case v == "latest":
		units, err := visibleCheckpoints(sc)
		if err != nil {
			return "", 0, err
		}
		if len(units) > 0 {
			u := units[len(units)-1]
			return sc.Lake.Path(u.Dir()), u.Step, nil
		}
		return "", 0, bad(fmt.Sprintf("run %q has no checkpoint before step %d, statement %d%s", sc.Run, sc.Step, sc.Call+1, otherRuns(sc)),
			"start the run with CALL init_policy(...) in an earlier step (or earlier in this step), pick a run with --run NAME, or give policy := '<checkpoint folder>'")
	case strings.HasPrefix(v, "step="):
		k, perr := strconv.ParseInt(strings.TrimPrefix(v, "step="), 10, 64)
		if perr != nil || k < 0 {
			return "", 0, bad("bad step number", "write step=K with K a step of this run, e.g. 'step=0'")
		}
		units, err := visibleCheckpoints(sc)
		if err != nil {
			return "", 0, err
		}
		for i := len(units) - 1; i >= 0; i-- {
			if units[i].Step == k {
				return sc.Lake.Path(units[i].Dir()), k, nil
			}
		}
		msg := fmt.Sprintf("run %q has no committed checkpoint at step %d", sc.Run, k)
		if k >= sc.Step {
			msg = fmt.Sprintf("checkpoint %d of run %q is not written before step %d, statement %d", k, sc.Run, sc.Step, sc.Call+1)
		}
		return "", 0, bad(msg, "list the run's checkpoints with: rljob lake ls")
	case strings.HasPrefix(v, "run="):
		return resolveOtherRun(sc, v, bad)
	case v == "" || v == "none":
		return "", 0, bad("no policy given", "use 'latest', 'step=K', 'run=X[/step=K]' or a checkpoint folder")
	}
	abs, err := filepath.Abs(sc.Path(arg, v))
	if err != nil {
		return "", 0, bad(err.Error(), "")
	}
	files := []string{trainer.ConfigFile, trainer.ModelFile}
	switch {
	case trainer.IsAdapterDir(abs):
		files = []string{trainer.AdapterModelFile}
	case trainer.IsLightDir(abs):
		files = []string{trainer.TrainerStateFile}
	}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(abs, f)); err != nil || st.IsDir() {
			return "", 0, bad(fmt.Sprintf("no checkpoint at %s (%s missing)", abs, f),
				"give 'latest', 'step=K' or a folder holding config.json, model.safetensors and tokenizer.json (or a PEFT adapter: adapter_config.json and adapter_model.safetensors; or a light checkpoint: trainer_state.json and train_inputs.safetensors)")
		}
	}
	return abs, lakeStepOf(sc, abs), nil
}

// resolveOtherRun resolves 'run=X' or 'run=X/step=K' (see resolvePolicy)
// with step -1 (policy_step NULL: the checkpoint is not this run's).
func resolveOtherRun(sc *jobs.StageCtx, v string, bad func(msg, hint string) error) (string, int64, error) {
	const hint = "write 'run=NAME' or 'run=NAME/step=K' with K a complete step of run NAME (rljob lake ls lists them)"
	run, stepStr, hasStep := strings.Cut(strings.TrimPrefix(v, "run="), "/")
	if err := arrowio.ValidatePartitionValue(run); err != nil {
		return "", 0, bad(err.Error(), hint)
	}
	if run == sc.Run {
		return "", 0, bad("that is this run", "name this run's checkpoints with 'latest' or 'step=K'")
	}
	k := int64(-1)
	if hasStep {
		n, perr := strconv.ParseInt(strings.TrimPrefix(stepStr, "step="), 10, 64)
		if perr != nil || n < 0 || !strings.HasPrefix(stepStr, "step=") {
			return "", 0, bad("bad step", hint)
		}
		k = n
	}
	u, ok, err := otherRunCheckpoint(sc, run, k)
	if err != nil {
		return "", 0, bad(err.Error(), hint)
	}
	if !ok {
		return "", 0, bad(fmt.Sprintf("run %q has no such checkpoint in a complete step in lake %s", run, sc.Lake.Root), hint)
	}
	return sc.Lake.Path(u.Dir()), -1, nil
}

// firstCheckpoint is the run's first checkpoint visible to the call (in
// (step, call) order; init_policy's at step 0 in a run that starts with
// one): the reference policy of the KL term.
func firstCheckpoint(sc *jobs.StageCtx) (arrowio.Unit, bool, error) {
	units, err := visibleCheckpoints(sc)
	if err != nil || len(units) == 0 {
		return arrowio.Unit{}, false, err
	}
	return units[0], true, nil
}

// otherRunCheckpoint is the newest checkpoint of another run in a complete
// step (step k, or any step when k < 0): other runs are seen at their
// complete steps only, as init_policy's policy := 'run=X/step=K' sees them.
func otherRunCheckpoint(sc *jobs.StageCtx, run string, k int64) (arrowio.Unit, bool, error) {
	units, err := sc.Lake.Units(arrowio.TableCheckpoints, run)
	if err != nil {
		return arrowio.Unit{}, false, fmt.Errorf("rl: list checkpoints of run %q: %w", run, err)
	}
	status, err := sc.Lake.ReadStepStatus(run)
	if err != nil {
		return arrowio.Unit{}, false, err
	}
	for i := len(units) - 1; i >= 0; i-- {
		if u := units[i]; status.Complete[u.Step] && (k < 0 || u.Step == k) {
			return u, true, nil
		}
	}
	return arrowio.Unit{}, false, nil
}

// otherRuns names the runs of the lake that have checkpoints, for the
// message of a run that has none.
func otherRuns(sc *jobs.StageCtx) string {
	runs, err := sc.Lake.Runs(arrowio.TableCheckpoints)
	if err != nil || len(runs) == 0 {
		return " (the lake has no checkpoints)"
	}
	return " (runs with checkpoints in this lake: " + strings.Join(runs, ", ") + ")"
}

// lakeStepOf returns K when dir is checkpoints/run=<this run>/step=K of the
// lake, else -1.
func lakeStepOf(sc *jobs.StageCtx, dir string) int64 {
	rel, err := filepath.Rel(sc.Lake.Root, dir)
	if err != nil {
		return -1
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 4 || parts[0] != arrowio.TableCheckpoints || parts[1] != arrowio.KeyRun+"="+sc.Run {
		return -1
	}
	k, err := strconv.ParseInt(strings.TrimPrefix(parts[2], arrowio.KeyStep+"="), 10, 64)
	if err != nil || !strings.HasPrefix(parts[2], arrowio.KeyStep+"=") {
		return -1
	}
	return k
}

// loadPolicy resolves policy argument arg and loads the checkpoint: model,
// optimizer state and trainer state when present, and the tokenizer (which
// must be there).
func loadPolicy(sc *jobs.StageCtx, a jobs.Args, arg string) (*policy, error) {
	dir, step, err := resolvePolicy(sc, a, arg)
	if err != nil {
		return nil, err
	}
	return loadPolicyDir(sc, a, arg, dir, step)
}

// loadPolicyDir loads the checkpoint folder dir, resolved from argument arg,
// whose step in this run is step (-1 outside it), as loadPolicy does. A
// light checkpoint comes from the process's cache when it holds it, else
// it is replayed and cached; its model and moments are then the cache's
// (release them with releaseModel and releaseOpt; takeOver makes them the
// caller's).
func loadPolicyDir(sc *jobs.StageCtx, a jobs.Args, arg, dir string, step int64) (*policy, error) {
	return loadPolicyWith(sc, a, arg, dir, step, trainer.LoadCheckpoint)
}

// loadSamplingPolicy is loadPolicy for a stage that only samples: the
// model holds its weights once, packed for the sampler, in the call's
// dtype (trainer.LoadForSampling; docs/memory.md). A light checkpoint is
// replayed (or borrowed from the cache) as loadPolicyDir does.
func loadSamplingPolicy(sc *jobs.StageCtx, a jobs.Args, arg string) (*policy, error) {
	dir, step, err := resolvePolicy(sc, a, arg)
	if err != nil {
		return nil, err
	}
	dtype := ""
	if hasDType(a) {
		dtype = a.String("dtype")
	}
	return loadPolicyWith(sc, a, arg, dir, step, func(dir string) (*trainer.Checkpoint, error) { return trainer.LoadForSampling(dir, dtype) })
}

// loadPolicyWith is loadPolicyDir with the loader of full checkpoints
// load. A light checkpoint is the cache's when it holds it in the call's
// dtype; otherwise it is replayed (trainer.LoadCheckpoint) and cached.
func loadPolicyWith(sc *jobs.StageCtx, a jobs.Args, arg, dir string, step int64, load func(string) (*trainer.Checkpoint, error)) (*policy, error) {
	ck := cacheBorrow(dir)
	if ck != nil && !cachedDTypeFits(a, ck.Model) {
		releaseModel(ck.Model) // the cached model stays in its dtype: load a copy
		ck = nil
	}
	if ck == nil {
		light := trainer.IsLightDir(dir)
		if light {
			load = trainer.LoadCheckpoint
		}
		var err error
		t0 := time.Now()
		if ck, err = load(dir); err != nil {
			return nil, &jobs.DataError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: load policy %s", sc.Stage, dir), File: dir, Err: err}
		}
		if light {
			sc.Log.Info().Str("checkpoint", dir).Float64("seconds", time.Since(t0).Seconds()).
				Msgf("%s: replayed light checkpoint (%s since its full state); a checkpoint that many processes load, such as an SFT warm-up, loads without replay when its call has full_state_every := 1", sc.Stage, calls(ck.State.Light.Depth))
			if cachedDTypeFits(a, ck.Model) {
				cachePut(dir, ck, true)
			}
		}
	}
	if ck.Tokenizer == nil {
		return nil, &jobs.DataError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: policy %s has no %s", sc.Stage, dir, trainer.TokenizerFile), File: dir,
			Hint: "a policy folder needs a tokenizer.json (init_policy writes one)"}
	}
	if err := applyDType(sc, a, ck.Model); err != nil {
		return nil, err
	}
	p := &policy{Model: ck.Model, Opt: ck.Opt, State: ck.State, Tok: ck.Tokenizer, Dir: dir, TokDir: trainer.TokenizerDir(dir), Step: step}
	if ck.State != nil {
		if s, ok := ck.State.Extra["stage"].(string); ok {
			p.Stage = s
		}
	}
	return p, nil
}

// takeOver makes pol's model and moments the caller's to update (a stage
// that trains calls it before changing them): the cache forgets them.
func takeOver(pol *policy) {
	cacheDrop(pol.Model)
	pol.Model.Recompute = false // a borrower may have set it; the trainer chooses again
}

// loadRef loads a reference model for KL (ref := 'step=K' | 'latest' | path).
func loadRef(sc *jobs.StageCtx, a jobs.Args, arg string) (*trainer.Model, int64, error) {
	dir, step, err := resolvePolicy(sc, a, arg)
	if err != nil {
		return nil, 0, err
	}
	m, err := trainer.LoadModel(dir)
	if err != nil {
		return nil, 0, &jobs.DataError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: load reference model %s", sc.Stage, dir), File: dir, Err: err}
	}
	return m, step, nil
}

// ckMeta is the manifest's argument record of a checkpoint. policy is the
// checkpoint it started from (its parent), lake-relative when it lies in
// the lake, so that a lake copied or moved reads the same.
func ckMeta(sc *jobs.StageCtx, a jobs.Args, from string) map[string]any {
	m := map[string]any{"stage": sc.Stage, "args": a.Map(), "seed": sc.Seed, "job_sha256": sc.JobSHA256, "device": jobs.Device()}
	if from != "" {
		m["policy"] = lakeRel(sc.Lake, from)
	}
	return m
}

// needsMeta records in a light checkpoint's manifest the folders its
// replay reads (chain: its parent, the parent's parent, ... down to a full
// state), lake-relative, so that lake gc keeps them with it.
func needsMeta(sc *jobs.StageCtx, meta map[string]any, chain []string) {
	if len(chain) == 0 {
		return
	}
	var rel []any
	for _, d := range chain {
		rel = append(rel, lakeRel(sc.Lake, d))
	}
	meta[arrowio.ManifestNeeds] = rel
}

// lightChain lists the folders the replay of dir reads when dir is a
// light checkpoint: its parent and, when that is light too, its chain.
func lightChain(dir string) []string {
	var out []string
	for trainer.IsLightDir(dir) && len(out) < 1<<10 {
		parent, _, err := trainer.LightParent(dir)
		if err != nil {
			break
		}
		out = append(out, parent)
		dir = parent
	}
	return out
}

// lakeRel is dir relative to the lake root, slash-separated, when dir lies
// in the lake; dir itself otherwise.
func lakeRel(l *arrowio.Lake, dir string) string {
	rel, err := filepath.Rel(l.Root, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return dir
	}
	return filepath.ToSlash(rel)
}

// commitCheckpoint writes ck (weights, tokenizer, optimizer and trainer
// state) as this step's checkpoint unit and commits it. A unit already
// committed by this call (a rerun) is kept.
func commitCheckpoint(sc *jobs.StageCtx, a jobs.Args, ck *trainer.Checkpoint, from string) error {
	ck.Dir = sc.Lake.Path(checkpointUnit(sc.Run, sc.Step, sc.Call).Dir())
	return commitFiles(sc, a, ck.WriteFiles, from, nil)
}

// commitFiles writes this step's checkpoint unit through write and commits
// it; needs are the folders a light checkpoint replays from.
func commitFiles(sc *jobs.StageCtx, a jobs.Args, write func(put func(string, func(io.Writer) error) error) error, from string, needs []string) error {
	u := checkpointUnit(sc.Run, sc.Step, sc.Call)
	meta := ckMeta(sc, a, from)
	needsMeta(sc, meta, needs)
	st, err := sc.Lake.Begin(u, meta)
	if err != nil {
		return fmt.Errorf("rl: %s: begin %s: %w", sc.Stage, u.Dir(), err)
	}
	if err := write(st.WriteFile); err != nil {
		_ = st.Abort()
		return fmt.Errorf("rl: %s: write %s: %w", sc.Stage, u.Dir(), err)
	}
	return finishCommit(sc, a, st)
}

// copyCheckpoint commits the files of the checkpoint folder src unchanged as
// this step's checkpoint (train and sft on empty data carry the policy
// forward, so every step has a checkpoint and 'latest' stays well-defined).
func copyCheckpoint(sc *jobs.StageCtx, a jobs.Args, src string) error {
	u := checkpointUnit(sc.Run, sc.Step, sc.Call)
	meta := ckMeta(sc, a, src)
	needsMeta(sc, meta, lightChain(src))
	st, err := sc.Lake.Begin(u, meta)
	if err != nil {
		return fmt.Errorf("rl: %s: begin %s: %w", sc.Stage, u.Dir(), err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		_ = st.Abort()
		return fmt.Errorf("rl: %s: copy checkpoint %s: %w", sc.Stage, src, err)
	}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
			continue
		}
		err := st.WriteFile(n, func(w io.Writer) error {
			f, err := os.Open(filepath.Join(src, n))
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		})
		if err != nil {
			_ = st.Abort()
			return fmt.Errorf("rl: %s: copy checkpoint %s: %w", sc.Stage, src, err)
		}
	}
	return finishCommit(sc, a, st)
}

func finishCommit(sc *jobs.StageCtx, a jobs.Args, st *arrowio.Staged) error {
	u := st.Unit()
	if _, err := st.Commit(); err != nil {
		if !errors.Is(err, arrowio.ErrAlreadyCommitted) {
			return fmt.Errorf("rl: %s: commit %s: %w", sc.Stage, u.Dir(), err)
		}
		sc.Log.Warn().Str("unit", u.Dir()).Msg("checkpoint already committed by this call; kept the committed copy")
	}
	return nil
}

// trainerState is the trainer_state.json of a checkpoint written by a stage.
// It holds no timestamps, so reruns write identical bytes.
func trainerState(sc *jobs.StageCtx, opt *trainer.AdamW, sched trainer.Schedule, seed int64, from int64) *trainer.TrainerState {
	st := &trainer.TrainerState{Schedule: sched, Seed: uint64(seed),
		Extra: map[string]any{"stage": sc.Stage, "run": sc.Run, "step": sc.Step}}
	if opt != nil {
		st.Step = opt.Step
		st.AdamW = *opt
	}
	if from >= 0 {
		st.Extra["policy_step"] = from
	}
	return st
}

// stageOptimizer returns the AdamW state the call continues: that of the
// newest checkpoint of this run visible to the call that its own stage
// wrote (train continues train's moments, sft continues sft's), or fresh
// moments when there is none. Each objective so keeps its own optimizer
// state, as if two optimizers shared one model: an sft between two train
// calls (ReLIFT) does not reset train's moments, nor mix SFT gradients
// into them.
//
// src is the folder the moments came from (pol.Dir, another checkpoint of
// the run), or "" for fresh ones.
func stageOptimizer(sc *jobs.StageCtx, pol *policy) (opt *trainer.AdamW, src string, err error) {
	_, params, _ := pol.Model.Trainable()
	if pol.Opt != nil && pol.Stage == sc.Stage && len(pol.Opt.M) == len(params) {
		return pol.Opt, pol.Dir, nil
	}
	units, err := visibleCheckpoints(sc)
	if err != nil {
		return nil, "", err
	}
	for i := len(units) - 1; i >= 0; i-- {
		dir := sc.Lake.Path(units[i].Dir())
		st, err := readTrainerState(dir)
		if err != nil || st == nil {
			continue
		}
		if stage, _ := st.Extra["stage"].(string); stage != sc.Stage {
			continue
		}
		if (trainer.IsAdapterDir(dir) || st.Light != nil && st.Light.LoRA) != (pol.Model.LoRA != nil) {
			continue // the moments of the other kind of training (full vs LoRA)
		}
		opt, err := loadMoments(dir, pol.Model, st)
		if err != nil {
			return nil, "", &jobs.DataError{Msg: fmt.Sprintf("%s: optimizer state of %s", sc.Stage, dir), File: dir, Err: err}
		}
		if opt != nil {
			return opt, dir, nil
		}
	}
	return trainer.DefaultAdamW(len(params)), "", nil
}

// loadMoments reads the AdamW moments of checkpoint dir for m (nil when it
// has none); a light checkpoint's are replayed.
func loadMoments(dir string, m *trainer.Model, st *trainer.TrainerState) (*trainer.AdamW, error) {
	if !trainer.IsLightDir(dir) {
		return trainer.LoadOptimizer(dir, m, st)
	}
	ck, err := trainer.LoadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	ck.Model.Release()
	_, params, _ := m.Trainable()
	if ck.Opt == nil || len(ck.Opt.M) != len(params) {
		n := 0
		if ck.Opt != nil {
			n = len(ck.Opt.M)
		}
		ck.Opt.Release()
		return nil, fmt.Errorf("rl: %s: moments for %d parameters, the policy trains %d", dir, n, len(params))
	}
	return ck.Opt, nil
}

// readTrainerState reads dir/trainer_state.json (nil when absent).
func readTrainerState(dir string) (*trainer.TrainerState, error) {
	b, err := os.ReadFile(filepath.Join(dir, trainer.TrainerStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st trainer.TrainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// dtypeArgSpec is the dtype argument of init_policy (def "fp32") and of
// the stages that load a policy (def "": the policy's own dtype).
func dtypeArgSpec(def string) jobs.ArgSpec {
	s := jobs.ArgSpec{Name: "dtype", Type: jobs.TypeString, Enum: []string{trainer.DTypeFP32, trainer.DTypeBF16},
		Doc: "compute precision: 'fp32', or 'bf16' (bf16 weights and matmul inputs, fp32 accumulation, fp32 master weights for AdamW; " +
			"the checkpoint is HF bf16: torch_dtype bfloat16, BF16 model.safetensors; docs/kernels.md)"}
	if def != "" {
		s.Default = def
	} else {
		s.DefaultDoc = "the policy's (its config.json torch_dtype)"
	}
	return s
}

// applyDType sets the model's compute dtype from the call's dtype
// argument, when it has one (else the model keeps the policy's; a stage
// without the argument, such as reward's model judge, keeps it too).
func applyDType(sc *jobs.StageCtx, a jobs.Args, m *trainer.Model) error {
	if !hasDType(a) {
		return nil
	}
	if err := m.SetDType(a.String("dtype")); err != nil {
		return &jobs.UsageError{Pos: a.Pos("dtype"), Msg: sc.Stage + ": " + err.Error(), Hint: "dtype := 'fp32' or 'bf16'"}
	}
	return nil
}

// cachedDTypeFits reports whether the call can use m (a light checkpoint's
// model, shared through the cache) as it is: the call names no dtype, or
// m's. applyDType would otherwise change a model other stages share.
func cachedDTypeFits(a jobs.Args, m *trainer.Model) bool {
	norm := func(d string) string {
		d, _ = trainer.ParseDType(d)
		return d
	}
	return !hasDType(a) || norm(a.String("dtype")) == norm(m.DType)
}

// hasDType reports whether the call's stage declares a dtype argument and
// it has a value.
func hasDType(a jobs.Args) bool {
	_, ok := a.Map()["dtype"]
	return ok
}

// calls is "1 call" or "n calls".
func calls(n int) string {
	if n == 1 {
		return "1 call"
	}
	return fmt.Sprintf("%d calls", n)
}
