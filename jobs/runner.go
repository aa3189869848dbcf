package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
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
	// WaitTimeout bounds each wait for other shards (their calls of this
	// step, or the previous step's markers); 0 = DefaultWaitTimeout.
	WaitTimeout time.Duration
	// CompactEvery, when > 0, makes shard 0 compact the run's complete
	// steps (sql.CompactLake) after every CompactEvery-th step, so that a
	// long run's reads stay fast; 0 = never (rljob lake compact by hand).
	CompactEvery int

	Log      zerolog.Logger
	Registry *Registry // nil: DefaultRegistry
	Progress Progress  // nil: no progress bars
}

// DefaultWaitTimeout is how long a shard waits for the others by default.
const DefaultWaitTimeout = time.Hour

// Result says what a run did.
type Result struct {
	Job       *Job
	FirstStep int64 // first step run (or, dry run, that would run)
	Steps     int   // iterations completed by this invocation
	Skipped   int   // stage calls skipped because already committed
	// Warnings are what a dry run found that a run would probably trip on
	// (no checkpoint or prompts where the job needs them).
	Warnings []Warning
	// StepTimes is the wall time of each completed step, from its start
	// (waiting for the previous step included) to its marker's commit.
	StepTimes []time.Duration
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
	if o.UntilStep < 0 {
		return nil, &UsageError{Msg: fmt.Sprintf("--until-step %d: must be >= 0", o.UntilStep)}
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
	if err := checkSetsRead(job, order); err != nil {
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
	lock, err := AcquireRunnerLock(lake.Root, o.Run, o.Shard, o.NumShards)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := lake.FinishDrops(o.Run); err != nil { // an interrupted drop-step
		return nil, err
	}

	status, err := lake.ReadStepStatus(o.Run)
	if err != nil {
		return nil, markerError(err)
	}
	// The views start as the first step will see them (other runs' steps
	// are added by runStep's snapshot), so the lake is listed once.
	eng, err := openEngine(ctx, lake.Root, o.JobFile, &rsql.Snapshot{Run: o.Run, Step: status.Next}, o.Log)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	if err := CheckCatalog(ctx, eng, job, reg); err != nil {
		return nil, err
	}
	warnJob(o, job, lake.Root)
	next := status.Next
	res.FirstStep = next
	log := o.Log.With().Str("run", o.Run).Logger()
	if o.NumShards > 1 {
		log = log.With().Int("shard", o.Shard).Int("num_shards", o.NumShards).Logger()
	}
	if next > 0 {
		log.Info().Int64("last_complete_step", next-1).Int64("next_step", next).Msg("resuming")
	}
	timeout := o.WaitTimeout
	if timeout == 0 {
		timeout = DefaultWaitTimeout
	}
	r := &stepper{o: o, job: job, eng: eng, lake: lake, vars: vars, order: order, wait: waiter{timeout: timeout, log: log}}
	for it := 0; it < o.Steps; it++ {
		step := next + int64(it)
		if o.UntilStep > 0 && step >= o.UntilStep {
			log.Info().Int64("until_step", o.UntilStep).Msg("run complete up to --until-step")
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		slog := log.With().Int64("step", step).Logger()
		t0 := time.Now()
		skipped, err := r.runStep(ctx, step, slog)
		res.Skipped += skipped
		if err != nil {
			return res, err
		}
		res.Steps++
		res.StepTimes = append(res.StepTimes, time.Since(t0))
	}
	return res, nil
}

// markerError makes an untrustworthy step marker a data error (exit 3).
func markerError(err error) error {
	var me *arrowio.MarkerError
	if errors.As(err, &me) {
		return &DataError{Msg: me.Error(), File: me.Dir,
			Hint: "rljob lake verify lists the lake's problems; fix the marker as said, then rerun"}
	}
	return err
}

// openEngine opens the DuckDB engine over root, sets its file search path
// and registers the verifier UDFs. A lake table DuckDB cannot read (a corrupt Parquet file) does not
// stop it: the engine turns that table's view into one raising the error
// (so a job that reads it fails naming the file, exit 3), and it is logged
// here as a warning.
func openEngine(ctx context.Context, root, jobFile string, snap *rsql.Snapshot, log zerolog.Logger) (*rsql.Engine, error) {
	eng, err := rsql.OpenAt(ctx, root, snap)
	if err != nil {
		return nil, fmt.Errorf("jobs: open engine on %s: %w", root, err)
	}
	// Relative file names in the job's SQL (read_json('data.jsonl')) are
	// looked up in the job file's folder, then in the current directory
	// (where --set values given on the command line point).
	search := jobDir(jobFile)
	if wd, err := os.Getwd(); err == nil {
		search += "," + wd
	}
	if err := eng.Exec(ctx, "SET file_search_path = "+QuoteString(search)); err != nil {
		eng.Close()
		return nil, err
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
// not exist yet, an empty temporary folder) to check CALL names, SQL
// syntax, table arguments (dryChecks) and what the job needs from the
// lake. It sets the step the run would start at and the warnings.
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
	eng, err := openEngine(ctx, root, o.JobFile, nil, o.Log)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := CheckCatalog(ctx, eng, job, reg); err != nil {
		return err
	}
	warnJob(o, job, root)
	if root == o.Lake {
		st, err := (&arrowio.Lake{Root: filepath.Clean(root)}).ReadStepStatus(o.Run)
		if err != nil {
			return markerError(err)
		}
		res.FirstStep = st.Next
	}
	warns, err := dryChecks(ctx, eng, job, root, o.Run, res.FirstStep)
	if err != nil {
		return err
	}
	res.Warnings = warns
	for _, s := range job.Stmts {
		if s.Stage == nil {
			continue
		}
		names := s.Args.Exprs()
		if s.When != nil {
			names = append(names, WhenArg)
		}
		if len(names) > 0 {
			o.Log.Info().Str("at", s.Pos.String()).Str("stage", s.Stage.Spec().Name).Strs("arguments", names).
				Msg("arguments evaluated at run time, checked then")
		}
	}
	return nil
}
