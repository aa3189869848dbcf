package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// stepper runs the steps of one runner (one shard of a run).
type stepper struct {
	o     Options
	job   *Job
	eng   *rsql.Engine
	lake  *arrowio.Lake
	vars  map[string]any
	order []string
	wait  waiter
	// complete caches other runs' complete steps for the snapshot.
	complete map[string]*arrowio.StepStatus
}

// runStep runs every statement of the job once for step and commits this
// shard's step marker. It returns how many stage calls it skipped.
//
// Before the first statement it waits until step-1 is complete on every
// shard, refuses a step started by another job file or shard count, and
// sets the snapshot (see sql.Snapshot) that every statement of the step
// sees.
func (r *stepper) runStep(ctx context.Context, step int64, log zerolog.Logger) (int, error) {
	started := time.Now()
	if err := r.waitStep(ctx, step-1); err != nil {
		return 0, err
	}
	rec, err := readStepRecord(r.lake, r.o.Run, step)
	if err != nil {
		return 0, err
	}
	if err := rec.checkIdentity(r.o.Run, step, r.job, r.o.NumShards); err != nil {
		return 0, err
	}
	if err := r.setVariables(ctx, step); err != nil {
		return 0, err
	}
	r.complete = map[string]*arrowio.StepStatus{}
	snap := &rsql.Snapshot{Run: r.o.Run, Step: step, Complete: r.isComplete}
	r.eng.SetSnapshot(snap)
	if err := r.eng.Refresh(ctx); err != nil {
		return 0, fmt.Errorf("jobs: lake views: %w", err)
	}
	log.Info().Msg("step started")
	skipped := 0
	for c := (&cursor{}); c.pc < len(r.job.Stmts); {
		if err := ctx.Err(); err != nil {
			return skipped, err
		}
		s := r.job.Stmts[c.pc]
		if s.Loop != nil {
			if err := r.control(ctx, s, c, log); err != nil {
				return skipped, err
			}
			continue
		}
		call := c.call(s)
		testKill(step, call)
		c.pc++
		if s.Stage == nil {
			t0 := time.Now()
			if err := r.eng.Exec(ctx, s.Text); err != nil {
				if ctx.Err() != nil {
					return skipped, ctx.Err()
				}
				return skipped, ClassifySQL(err, s.Pos, s.Text)
			}
			log.Debug().Str("at", s.Pos.String()).Str("took", time.Since(t0).Round(time.Microsecond).String()).Msg("sql")
			continue
		}
		didSkip, err := r.runCall(ctx, step, s, call, c.iterations(), log)
		if err != nil {
			return skipped, err
		}
		if didSkip {
			skipped++
		}
		snap.Call = call + 1
		if err := r.eng.RefreshThisStep(ctx); err != nil {
			return skipped, fmt.Errorf("jobs: this step's views: %w", err)
		}
	}
	testKill(step, r.job.Slots)
	if err := r.commitMarker(step, started); err != nil {
		return skipped, err
	}
	r.compact(ctx, step, log)
	log.Info().Str("took", time.Since(started).Round(time.Millisecond).String()).Msg("step complete")
	return skipped, nil
}

// compact makes segments of the run's complete steps after every
// CompactEvery-th step (shard 0 only). The step is complete already, so a
// failed compaction is logged, not returned: it costs read speed, never data.
func (r *stepper) compact(ctx context.Context, step int64, log zerolog.Logger) {
	n := int64(r.o.CompactEvery)
	if n <= 0 || r.o.Shard != 0 || (step+1)%n != 0 {
		return
	}
	t0 := time.Now()
	segs, err := rsql.CompactLake(ctx, r.lake.Root, rsql.CompactOptions{Run: r.o.Run})
	if err != nil {
		log.Warn().Err(err).Msg("compaction failed (the step is complete; reads stay slower until a later compaction)")
		return
	}
	removed, err := r.lake.GCSegments(SupersededAge)
	if err != nil {
		log.Warn().Err(err).Msg("removing superseded segments failed (lake gc removes them later)")
	}
	log.Info().Int("segments", len(segs)).Int("superseded_removed", len(removed)).Str("took", time.Since(t0).Round(time.Millisecond).String()).Msg("compacted complete steps")
}

// SupersededAge is how old a segment must be before the runner's automatic
// compaction removes the smaller segments it supersedes (ten 10-step
// segments once the 100-step one exists). Readers list segment files when
// a step starts, so a reader whose step began before the larger segment
// existed and is still running an hour later could miss a file; lake gc
// --older-than applies the same rule by hand.
const SupersededAge = time.Hour

// setVariables sets step, run, seed, shard, num_shards and the --set values.
func (r *stepper) setVariables(ctx context.Context, step int64) error {
	set := func(k string, v any) error {
		if err := r.eng.SetVariable(ctx, k, v); err != nil {
			return fmt.Errorf("jobs: set variable %s: %w", k, err)
		}
		return nil
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"step", step}, {"run", r.o.Run}, {"seed", r.o.Seed}, {"shard", int64(r.o.Shard)}, {"num_shards", int64(r.o.NumShards)}} {
		if err := set(kv.k, kv.v); err != nil {
			return err
		}
	}
	for _, k := range r.order {
		if err := set(k, r.vars[k]); err != nil {
			return err
		}
	}
	return nil
}

// isComplete reports whether step of another run is complete (every shard's
// marker committed); a run whose markers cannot be read shows nothing.
func (r *stepper) isComplete(run string, step int64) bool {
	st, ok := r.complete[run]
	if !ok {
		var err error
		st, err = r.lake.ReadStepStatus(run)
		if err != nil {
			st = &arrowio.StepStatus{}
		}
		r.complete[run] = st
	}
	return st.Complete[step]
}

// waitStep waits until step is complete: the markers of every shard that
// ran it (the count its markers record; a step run by another shard count,
// or unsharded, counts as its own). A no-op for step < 0 and for an
// unsharded runner, whose own marker completed it.
func (r *stepper) waitStep(ctx context.Context, step int64) error {
	if step < 0 || r.o.NumShards <= 1 {
		return nil
	}
	return r.wait.waitFor(ctx, fmt.Sprintf("the markers of step %d", step), func() ([]int, error) {
		st, err := r.lake.ReadStepStatus(r.o.Run)
		if err != nil {
			return nil, markerError(err)
		}
		if st.Complete[step] {
			return nil, nil
		}
		n := st.N[step]
		if n == 0 {
			n = r.o.NumShards
		}
		var missing []int
		for i := 0; i < n; i++ {
			if !st.Shards[step][i] {
				missing = append(missing, i)
			}
		}
		return missing, nil
	})
}

// runCall runs one stage call, or skips it: when its record is committed
// already (a rerun), when it is not sharded and this is not shard 0 (the
// call then waits for shard 0's record), or when its when := is false (the
// skip is recorded). A sharded call then waits for every shard's record, so
// the statements after it see the same this_step_ views on every shard.
func (r *stepper) runCall(ctx context.Context, step int64, s Stmt, call int, iters string, log zerolog.Logger) (bool, error) {
	spec := s.Stage.Spec()
	cl := log.With().Str("stage", spec.Name).Int("call", call)
	if iters != "" {
		cl = cl.Str("iteration", iters)
	}
	clog := cl.Logger()
	owner := r.o.Shard
	if !spec.Sharded {
		owner = 0
	}
	if owner != r.o.Shard {
		clog.Info().Msg("not a sharded stage: runs on shard 0; waiting for it")
		return true, r.waitCall(ctx, step, s, call, []int{0})
	}
	skipped, err := r.doCall(ctx, step, s, call, clog)
	if err != nil {
		return skipped, err
	}
	if spec.Sharded && r.o.NumShards > 1 {
		all := make([]int, r.o.NumShards)
		for i := range all {
			all[i] = i
		}
		return skipped, r.waitCall(ctx, step, s, call, all)
	}
	return skipped, nil
}

// doCall runs the call on this shard unless its record exists, and commits
// its record.
func (r *stepper) doCall(ctx context.Context, step int64, s Stmt, call int, clog zerolog.Logger) (bool, error) {
	spec := s.Stage.Spec()
	if ok, err := r.lake.IsCommitted(r.callUnit(step, call, r.o.Shard)); err != nil {
		return false, err
	} else if ok {
		clog.Info().Msg("already committed: skipped, outputs exposed")
		return true, nil
	}
	record := callRecord{shard: r.o.Shard, numShards: r.o.NumShards, call: call, stage: spec.Name, sha: r.job.SHA256}
	args, run, err := EvalArgs(ctx, r.eng, s)
	if err != nil {
		return false, err
	}
	if !run {
		clog.Info().Str("at", s.Pos.String()).Msg("when := is false: skipped")
		record.status = StatusSkipped
		return true, commitCallRecord(r.lake, r.o.Run, step, record)
	}
	if names := s.Args.Exprs(); len(names) > 0 {
		clog = clog.With().Str("evaluated", evalNote(args, names)).Logger()
	}
	sc := &StageCtx{
		Engine: r.eng, Lake: r.lake, Stage: spec.Name, Run: r.o.Run, Step: step, Call: call,
		Shard: r.o.Shard, NumShards: r.o.NumShards, Seed: r.o.Seed, Pos: s.Pos, JobSHA256: r.job.SHA256,
		JobDir: jobDir(r.job.File), Log: clog, args: args, progress: r.o.Progress,
	}
	t0 := time.Now()
	sum, err := s.Stage.Run(ctx, sc, args)
	if err != nil {
		return false, stageError(err, s)
	}
	sum.Seconds = time.Since(t0).Seconds()
	logSummary(clog, s, sum)
	record.status, record.args, record.rows = StatusDone, args.Map(), sum.Rows
	return false, commitCallRecord(r.lake, r.o.Run, step, record)
}

// waitCall waits for the records of call s from shards.
func (r *stepper) waitCall(ctx context.Context, step int64, s Stmt, call int, shards []int) error {
	what := fmt.Sprintf("%s (statement %d at %s) of step %d", s.Stage.Spec().Name, s.Index+1, s.Pos, step)
	return r.wait.waitFor(ctx, what, func() ([]int, error) {
		var missing []int
		for _, i := range shards {
			ok, err := r.lake.IsCommitted(r.callUnit(step, call, i))
			if err != nil {
				return nil, err
			}
			if !ok {
				missing = append(missing, i)
			}
		}
		return missing, nil
	})
}

func (r *stepper) callUnit(step int64, call, shard int) arrowio.Unit {
	return arrowio.Unit{Table: CallsTable, Run: r.o.Run, Step: step, Call: call, Shard: shard}
}

// commitMarker commits this shard's step marker.
func (r *stepper) commitMarker(step int64, started time.Time) error {
	u := stepUnit(r.o.Run, step, r.o.Shard)
	meta := map[string]any{"job_file": r.job.File, "job_sha256": r.job.SHA256, "shard": r.o.Shard, "num_shards": r.o.NumShards}
	for _, k := range []string{"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"} {
		if v := os.Getenv(k); v != "" {
			meta[strings.ToLower(k)] = v // which Slurm task wrote the step
		}
	}
	st, err := r.lake.Begin(u, meta)
	if err != nil {
		return fmt.Errorf("jobs: step marker %s: %w", u.Dir(), err)
	}
	rr := arrowio.MarkerRecord(r.o.Shard, r.o.NumShards, started, time.Now(), r.job.File, r.job.SHA256)
	defer rr.Release()
	if _, err := st.WriteRecords(u.FileName(), nil, rr); err != nil {
		_ = st.Abort()
		return fmt.Errorf("jobs: step marker %s: %w", u.Dir(), err)
	}
	slowCommit()
	if _, err := st.Commit(); err != nil && !errors.Is(err, arrowio.ErrAlreadyCommitted) {
		return fmt.Errorf("jobs: step marker %s: %w", u.Dir(), err)
	}
	return nil
}

// logSummary logs a stage's one-line summary.
func logSummary(l zerolog.Logger, s Stmt, sum Summary) {
	ev := l.Info()
	if sum.Skipped {
		ev = l.Warn()
	}
	ev = ev.Str("at", s.Pos.String()).Str("table", sum.Table).Int64("rows", sum.Rows).Float64("seconds", round3(sum.Seconds))
	for k, v := range sum.Metrics {
		ev = ev.Float64(k, v)
	}
	msg := "stage done"
	if sum.Note != "" {
		msg = sum.Note
	}
	ev.Msg(msg)
}

// testKill is a test hook, not a user flag: RLJOB_TEST_KILL_AT=<step>:<i>
// SIGKILLs the process just before the statement whose call number is i
// (0-based; a job without loops numbers its statements 0, 1, ...; i =
// Job.Slots: before the step marker) of step <step>.
func testKill(step int64, stmt int) {
	v := os.Getenv("RLJOB_TEST_KILL_AT")
	if v == "" {
		return
	}
	ss, is, ok := strings.Cut(v, ":")
	if !ok || ss != strconv.FormatInt(step, 10) || is != strconv.Itoa(stmt) {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// stageError adds the call's position and statement to a stage's typed
// error, and wraps an untyped one with them.
func stageError(err error, s Stmt) error {
	var ue *UsageError
	var de *DataError
	switch {
	case errors.As(err, &ue):
		if ue.Pos.Line == 0 {
			ue.Pos = s.Pos
		}
		if ue.Stmt == "" {
			ue.Stmt = s.Text
		}
		return err
	case errors.As(err, &de):
		if de.Pos.Line == 0 {
			de.Pos = s.Pos
		}
		if de.Stmt == "" {
			de.Stmt = s.Text
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: stage %s: %w", s.Pos, s.Stage.Spec().Name, err)
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
