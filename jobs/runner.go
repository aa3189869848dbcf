package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"rljob/arrowio"
	rsql "rljob/sql"
)

// Options configure one `rljob run`.
type Options struct {
	JobFile string
	Lake    string // lake root
	Run     string // run name (a partition value)
	// Steps is how many iterations to run from the resume point (default 1).
	Steps int
	// UntilStep, when > 0, stops before step UntilStep: the run ends with
	// steps 0..UntilStep-1 complete, however often it was interrupted.
	UntilStep int64
	Seed      int64
	Sets      []string // "key=value", see ParseSet
	Shard     int
	NumShards int // 0 or 1: unsharded
	DryRun    bool

	Log      zerolog.Logger
	Registry *Registry // nil: DefaultRegistry
	Progress Progress  // nil: no progress bars
}

// Result says what a run did.
type Result struct {
	Job       *Job
	FirstStep int64 // first step run (or, dry run, that would run)
	Steps     int   // iterations completed by this invocation
	Skipped   int   // stage calls skipped because already committed
}

// Run checks and runs a job (DESIGN.md §2):
//
//  1. check the options (run name, shard, --set) and compile the job file:
//     statements, stage names, stage arguments — before touching the lake;
//  2. dry run: open the engine over the lake read-only, check CALL names and
//     SQL syntax, and return;
//  3. take the run's lock (a *LockError if held), open the engine, register
//     the verifier UDFs, check CALL names and SQL syntax;
//  4. from the resume step (one past the last complete step), for each of
//     Steps iterations: SET VARIABLE step, run, seed, shard, num_shards and
//     each --set; run every statement in order — SQL in DuckDB, stage calls
//     in Go, skipping a call whose output units are all committed already;
//     then commit the step marker (see StepsTable).
func Run(ctx context.Context, o Options) (*Result, error) {
	reg := o.Registry
	if reg == nil {
		reg = DefaultRegistry
	}
	if o.NumShards < 1 {
		o.NumShards = 1
	}
	if o.Steps < 0 {
		return nil, &UsageError{Msg: fmt.Sprintf("--steps %d: must be >= 0", o.Steps)}
	}
	if err := arrowio.ValidatePartitionValue(o.Run); err != nil {
		return nil, &UsageError{Msg: fmt.Sprintf("bad run name %q", o.Run), Err: err, Hint: "a run name is a folder name: no '/', '\\', '..', '=', leading '.' or control characters"}
	}
	if o.Shard < 0 || o.Shard >= o.NumShards {
		return nil, &UsageError{Msg: fmt.Sprintf("shard %d of %d out of range", o.Shard, o.NumShards)}
	}
	vars := map[string]any{}
	var order []string
	for _, kv := range o.Sets {
		k, v, err := ParseSet(kv)
		if err != nil {
			return nil, err
		}
		if _, dup := vars[k]; !dup {
			order = append(order, k)
		}
		vars[k] = v
	}
	job, err := LoadJob(o.JobFile, reg)
	if err != nil {
		return nil, err
	}
	res := &Result{Job: job}
	if o.DryRun {
		return res, dryRun(ctx, o, job, reg, res)
	}

	lake, err := arrowio.OpenLake(o.Lake)
	if err != nil {
		return nil, fmt.Errorf("jobs: open lake %s: %w", o.Lake, err)
	}
	lock, err := AcquireRunLock(LockPath(lake.Root, o.Run, o.Shard, o.NumShards), o.Run)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	eng, err := openEngine(ctx, lake.Root, o.Log)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	if err := CheckCatalog(ctx, eng, job, reg); err != nil {
		return nil, err
	}

	last, any, err := LastCompletedStep(lake, o.Run, o.Shard)
	if err != nil {
		return nil, err
	}
	next := int64(0)
	if any {
		next = last + 1
	}
	res.FirstStep = next
	log := o.Log.With().Str("run", o.Run).Logger()
	if o.NumShards > 1 {
		log = log.With().Int("shard", o.Shard).Int("num_shards", o.NumShards).Logger()
	}
	if any {
		log.Info().Int64("last_complete_step", last).Int64("next_step", next).Msg("resuming")
	}
	steps := o.Steps
	for it := 0; it < steps; it++ {
		step := next + int64(it)
		if o.UntilStep > 0 && step >= o.UntilStep {
			log.Info().Int64("until_step", o.UntilStep).Msg("run complete up to --until-step")
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		slog := log.With().Int64("step", step).Logger()
		skipped, err := runStep(ctx, o, job, eng, lake, step, vars, order, slog)
		res.Skipped += skipped
		if err != nil {
			return res, err
		}
		res.Steps++
	}
	return res, nil
}

// openEngine opens the DuckDB engine over root and registers the verifier
// UDFs. A lake table DuckDB cannot read (a corrupt Parquet file) does not
// stop it: the engine turns that table's view into one raising the error
// (so a job that reads it fails naming the file, exit 3), and it is logged
// here as a warning.
func openEngine(ctx context.Context, root string, log zerolog.Logger) (*rsql.Engine, error) {
	eng, err := rsql.Open(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("jobs: open engine on %s: %w", root, err)
	}
	for _, te := range eng.TableErrors() {
		log.Warn().Str("table", te.Table).Msg(te.Error())
	}
	if err := RegisterUDFs(eng); err != nil {
		eng.Close()
		return nil, err
	}
	return eng, nil
}

// dryRun checks everything that can be checked without running a stage or
// writing anything: the engine is opened over the lake (or, if the lake does
// not exist yet, an empty temporary folder) to check CALL names and SQL
// syntax. It returns the step the run would start at.
func dryRun(ctx context.Context, o Options, job *Job, reg *Registry, res *Result) error {
	root := o.Lake
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		tmp, err := os.MkdirTemp("", "rljob-dry-")
		if err != nil {
			return fmt.Errorf("jobs: dry run: %w", err)
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	eng, err := openEngine(ctx, root, o.Log)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := CheckCatalog(ctx, eng, job, reg); err != nil {
		return err
	}
	if root == o.Lake {
		lake := &arrowio.Lake{Root: filepath.Clean(root)}
		if last, ok, err := LastCompletedStep(lake, o.Run, o.Shard); err == nil && ok {
			res.FirstStep = last + 1
		}
	}
	return nil
}

// runStep runs every statement of the job once for step and commits the
// step marker. It returns how many stage calls it skipped.
func runStep(ctx context.Context, o Options, job *Job, eng *rsql.Engine, lake *arrowio.Lake, step int64, vars map[string]any, order []string, log zerolog.Logger) (int, error) {
	started := time.Now()
	set := func(k string, v any) error {
		if err := eng.SetVariable(ctx, k, v); err != nil {
			return fmt.Errorf("jobs: set variable %s: %w", k, err)
		}
		return nil
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"step", step}, {"run", o.Run}, {"seed", o.Seed}, {"shard", int64(o.Shard)}, {"num_shards", int64(o.NumShards)}} {
		if err := set(kv.k, kv.v); err != nil {
			return 0, err
		}
	}
	for _, k := range order {
		if err := set(k, vars[k]); err != nil {
			return 0, err
		}
	}
	log.Info().Msg("step started")
	skipped := 0
	for _, s := range job.Stmts {
		if err := ctx.Err(); err != nil {
			return skipped, err
		}
		if s.Stage == nil {
			t0 := time.Now()
			if err := eng.Exec(ctx, s.Text); err != nil {
				if ctx.Err() != nil {
					return skipped, ctx.Err()
				}
				return skipped, ClassifySQL(err, s.Pos, s.Text)
			}
			log.Debug().Str("at", s.Pos.String()).Str("took", time.Since(t0).Round(time.Microsecond).String()).Msg("sql")
			continue
		}
		didSkip, err := runCall(ctx, o, eng, lake, step, s, log)
		if err != nil {
			return skipped, err
		}
		if didSkip {
			skipped++
		}
	}
	u := stepUnit(o.Run, step, o.Shard)
	st, err := lake.Begin(u, map[string]any{"job_file": job.File, "job_sha256": job.SHA256})
	if err != nil {
		return skipped, fmt.Errorf("jobs: step marker %s: %w", u.Dir(), err)
	}
	rr := stepMarker(o.Shard, o.NumShards, started, time.Now(), job.File, job.SHA256)
	defer rr.Release()
	if _, err := st.WriteRecords(u.FileName(), nil, rr); err != nil {
		_ = st.Abort()
		return skipped, fmt.Errorf("jobs: step marker %s: %w", u.Dir(), err)
	}
	slowCommit()
	if _, err := st.Commit(); err != nil && !errors.Is(err, arrowio.ErrAlreadyCommitted) {
		return skipped, fmt.Errorf("jobs: step marker %s: %w", u.Dir(), err)
	}
	if err := eng.Refresh(ctx); err != nil {
		return skipped, fmt.Errorf("jobs: refresh lake views: %w", err)
	}
	log.Info().Str("took", time.Since(started).Round(time.Millisecond).String()).Msg("step complete")
	return skipped, nil
}

// runCall runs one stage call, or skips it when it is already done (every
// output unit committed) or belongs to shard 0 only. It returns whether it
// skipped it for one of those reasons (a stage's own no-op on empty input
// is logged, not counted).
func runCall(ctx context.Context, o Options, eng *rsql.Engine, lake *arrowio.Lake, step int64, s Stmt, log zerolog.Logger) (bool, error) {
	spec := s.Stage.Spec()
	sc := &StageCtx{
		Engine: eng, Lake: lake, Stage: spec.Name, Run: o.Run, Step: step, Call: s.Index,
		Shard: o.Shard, NumShards: o.NumShards, Seed: o.Seed, Pos: s.Pos,
		Log:  log.With().Str("stage", spec.Name).Int("call", s.Index).Logger(),
		args: s.Args, progress: o.Progress,
	}
	if !spec.Sharded && o.NumShards > 1 && o.Shard != 0 {
		sc.Log.Info().Msg("not a sharded stage: runs on shard 0 only; skipped")
		return true, nil
	}
	outs := spec.Outputs(s.Args)
	done := len(outs) > 0
	for _, t := range outs {
		ok, err := lake.IsCommitted(sc.Unit(t))
		if err != nil {
			return false, err
		}
		done = done && ok
	}
	if done {
		sc.Log.Info().Strs("outputs", outs).Msg("already committed: skipped, outputs exposed")
		return true, sc.Expose(ctx)
	}
	t0 := time.Now()
	sum, err := s.Stage.Run(ctx, sc, s.Args)
	if err != nil {
		return false, stageError(err, s)
	}
	sum.Seconds = time.Since(t0).Seconds()
	ev := sc.Log.Info()
	if sum.Skipped {
		ev = sc.Log.Warn()
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
	return false, nil
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
