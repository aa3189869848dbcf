package rl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"rljob/arrowio"
	"rljob/jobs"
	"rljob/trainer"
	"rljob/trainer/tokenizer"
)

// policy is a checkpoint loaded for one stage call.
type policy struct {
	Model *trainer.Model
	Opt   *trainer.AdamW        // nil when the checkpoint has no optimizer state
	State *trainer.TrainerState // nil when it has no trainer_state.json
	Tok   tokenizer.Tokenizer   // from tokenizer.json (+ tokenizer_config.json)
	Dir   string                // where it was loaded from
	Step  int64                 // its step in this run; -1 for a folder outside the run
	Stage string                // stage that wrote it (trainer_state extra "stage"); "" if unknown
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

// checkpointUnit is the checkpoint unit of run at step.
func checkpointUnit(run string, step int64, call int) arrowio.Unit {
	return arrowio.Unit{Table: arrowio.TableCheckpoints, Run: run, Step: step, Call: call}
}

// visibleCheckpoint reports whether checkpoint step k of the run is
// committed and visible to the call (see the package doc: step < S, or
// step S written by an earlier call of the step). It returns the writing
// call's index as well.
func visibleCheckpoint(sc *jobs.StageCtx, k int64) (ok bool, call int, err error) {
	u := checkpointUnit(sc.Run, k, 0)
	committed, err := sc.Lake.IsCommitted(u)
	if err != nil || !committed {
		return false, 0, err
	}
	m, err := sc.Lake.ReadManifest(u)
	if err != nil {
		return false, 0, err
	}
	switch {
	case k < sc.Step:
		return true, m.Call, nil
	case k == sc.Step:
		return m.Call < sc.Call, m.Call, nil
	}
	return false, m.Call, nil
}

// checkpointSteps lists the steps of the run that have a checkpoint folder
// (committed or not), ascending.
func checkpointSteps(l *arrowio.Lake, run string) ([]int64, error) {
	dir := filepath.Join(l.Root, arrowio.TableCheckpoints, arrowio.KeyRun+"="+run)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rl: list checkpoints: %w", err)
	}
	var steps []int64
	for _, e := range ents {
		v, ok := strings.CutPrefix(e.Name(), arrowio.KeyStep+"=")
		if !ok || !e.IsDir() {
			continue
		}
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			steps = append(steps, s)
		}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	return steps, nil
}

// resolvePolicy turns the value of policy argument arg ('latest', 'step=K'
// or a folder) into a checkpoint folder and its step in this run (-1 for a
// folder outside the run). A name that resolves to nothing is a UsageError
// at the argument.
func resolvePolicy(sc *jobs.StageCtx, a jobs.Args, arg string) (dir string, step int64, err error) {
	v := strings.TrimSpace(a.String(arg))
	bad := func(msg, hint string) error {
		return &jobs.UsageError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: %s := '%s': %s", sc.Stage, arg, v, msg), Hint: hint}
	}
	switch {
	case v == "latest":
		steps, err := checkpointSteps(sc.Lake, sc.Run)
		if err != nil {
			return "", 0, err
		}
		for i := len(steps) - 1; i >= 0; i-- {
			ok, _, err := visibleCheckpoint(sc, steps[i])
			if err != nil {
				return "", 0, err
			}
			if ok {
				warnStaleShard(sc, steps[i])
				return sc.Lake.Path(checkpointUnit(sc.Run, steps[i], 0).Dir()), steps[i], nil
			}
		}
		return "", 0, bad(fmt.Sprintf("run %q has no checkpoint at or before step %d", sc.Run, sc.Step),
			"start the run with CALL init_policy(...) in an earlier step (or earlier in this step), or give policy := '<checkpoint folder>'")
	case strings.HasPrefix(v, "step="):
		k, perr := strconv.ParseInt(strings.TrimPrefix(v, "step="), 10, 64)
		if perr != nil || k < 0 {
			return "", 0, bad("bad step number", "write step=K with K a step of this run, e.g. 'step=0'")
		}
		ok, call, err := visibleCheckpoint(sc, k)
		if err != nil {
			return "", 0, err
		}
		if !ok {
			msg := fmt.Sprintf("run %q has no committed checkpoint at step %d", sc.Run, k)
			if k > sc.Step || (k == sc.Step && call >= sc.Call) {
				msg = fmt.Sprintf("checkpoint %d of run %q is not written yet at step %d, statement %d", k, sc.Run, sc.Step, sc.Call+1)
			}
			return "", 0, bad(msg, "list the run's checkpoints with: rljob lake list")
		}
		return sc.Lake.Path(checkpointUnit(sc.Run, k, 0).Dir()), k, nil
	case v == "" || v == "none":
		return "", 0, bad("no policy given", "use 'latest', 'step=K' or a checkpoint folder")
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		return "", 0, bad(err.Error(), "")
	}
	for _, f := range []string{trainer.ConfigFile, trainer.ModelFile} {
		if st, err := os.Stat(filepath.Join(abs, f)); err != nil || st.IsDir() {
			return "", 0, bad(fmt.Sprintf("no checkpoint at %s (%s missing)", abs, f),
				"give 'latest', 'step=K' or a folder holding config.json, model.safetensors and tokenizer.json")
		}
	}
	return abs, lakeStepOf(sc, abs), nil
}

// warnStaleShard warns when a shard other than 0 resolves 'latest' before
// shard 0 (which runs the unsharded train) has completed the previous step:
// the policy it found may be older than the one shard 0 is about to write.
func warnStaleShard(sc *jobs.StageCtx, found int64) {
	if sc.NumShards <= 1 || sc.Shard == 0 || sc.Step == 0 || found >= sc.Step-1 {
		return
	}
	last, ok, err := jobs.LastCompletedStep(sc.Lake, sc.Run, 0)
	if err == nil && (!ok || last < sc.Step-1) {
		sc.Log.Warn().Int64("latest", found).Int64("step", sc.Step).
			Msg("shard 0 has not completed the previous step: 'latest' may be older than the policy it is training; run shards after it (Slurm --dependency=afterok)")
	}
}

// lakeStepOf returns K when dir is checkpoints/run=<this run>/step=K of the
// lake, else -1.
func lakeStepOf(sc *jobs.StageCtx, dir string) int64 {
	rel, err := filepath.Rel(sc.Lake.Root, dir)
	if err != nil {
		return -1
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 3 || parts[0] != arrowio.TableCheckpoints || parts[1] != arrowio.KeyRun+"="+sc.Run {
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
	ck, err := trainer.LoadCheckpoint(dir)
	if err != nil {
		return nil, &jobs.DataError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: load policy %s", sc.Stage, dir), File: dir, Err: err}
	}
	if ck.Tokenizer == nil {
		return nil, &jobs.DataError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: policy %s has no %s", sc.Stage, dir, trainer.TokenizerFile), File: dir,
			Hint: "a policy folder needs a tokenizer.json (init_policy writes one)"}
	}
	p := &policy{Model: ck.Model, Opt: ck.Opt, State: ck.State, Tok: ck.Tokenizer, Dir: dir, Step: step}
	if ck.State != nil {
		if s, ok := ck.State.Extra["stage"].(string); ok {
			p.Stage = s
		}
	}
	return p, nil
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

// checkStepFree makes sure the call may write this step's checkpoint: the
// unit must be free, or committed by this very call (an earlier attempt that
// crashed before its other outputs; the rerun then reproduces it).
func checkStepFree(sc *jobs.StageCtx, a jobs.Args) error {
	u := checkpointUnit(sc.Run, sc.Step, sc.Call)
	ok, err := sc.Lake.IsCommitted(u)
	if err != nil || !ok {
		return err
	}
	m, err := sc.Lake.ReadManifest(u)
	if err != nil {
		return err
	}
	if m.Call == sc.Call {
		return nil
	}
	stage, _ := m.Args["stage"].(string)
	return &jobs.UsageError{
		Pos: a.CallPos(),
		Msg: fmt.Sprintf("%s: step %d of run %q already has a checkpoint, written by statement %d (%s); a step holds one checkpoint",
			sc.Stage, sc.Step, sc.Run, m.Call+1, stage),
		Hint: "run each checkpoint-writing stage (init_policy, sft, train) in its own step: e.g. init_policy in one job run once, sft in the next",
	}
}

// ckMeta is the manifest's argument record of a checkpoint.
func ckMeta(sc *jobs.StageCtx, a jobs.Args, from string) map[string]any {
	m := map[string]any{"stage": sc.Stage, "args": a.Map(), "seed": sc.Seed}
	if from != "" {
		m["policy"] = from
	}
	return m
}

// commitCheckpoint writes ck (weights, tokenizer, optimizer and trainer
// state) as this step's checkpoint unit and commits it. A unit already
// committed by this call (a rerun) is kept.
func commitCheckpoint(sc *jobs.StageCtx, a jobs.Args, ck *trainer.Checkpoint, from string) error {
	u := checkpointUnit(sc.Run, sc.Step, sc.Call)
	st, err := sc.Lake.Begin(u, ckMeta(sc, a, from))
	if err != nil {
		return fmt.Errorf("rl: %s: begin %s: %w", sc.Stage, u.Dir(), err)
	}
	if err := ck.WriteFiles(st.WriteFile); err != nil {
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
	st, err := sc.Lake.Begin(u, ckMeta(sc, a, src))
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
		if err := checkStepFree(sc, a); err != nil {
			return err
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
