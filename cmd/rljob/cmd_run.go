package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rljob/rljob/jobs"
)

func init() {
	o := &runFlags{}
	register(&command{
		name:  "run",
		usage: "JOB.sql [--lake DIR] [--run NAME] [--steps N] [--until-step S] [--seed S] [--set k=v]... [--shard i/n] [--wait-timeout D] [--compact-every N] [--memory SIZE] [--device cpu|cuda] [--dry-run]",
		short: "run a job file: N iterations of its statements, resuming after the last complete step",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.run, "run", "main", "run name (a partition value: no '/', '..', '=')")
			fs.IntVar(&o.steps, "steps", 1, "iterations to run from the resume point")
			fs.Int64Var(&o.until, "until-step", 0, "stop before this step (0 = no limit): with a large --steps, run until steps 0..S-1 are complete")
			fs.Int64Var(&o.seed, "seed", 0, "run seed (stage seeds derive from it, the step and the call, never the shard)")
			fs.StringArrayVar(&o.sets, "set", nil, "set a DuckDB variable before each iteration: key=value (typed int, float, bool, else string); repeatable")
			fs.StringVar(&o.shard, "shard", "", "this runner's shard i/n (default: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN / SLURM_ARRAY_TASK_COUNT, else 0/1)")
			fs.IntVar(&o.compactEvery, "compact-every", 10, "after every N-th step, compact the run's complete steps into segments (fast reads for long runs; see rljob lake compact); 0 = never")
			fs.DurationVar(&o.waitTimeout, "wait-timeout", jobs.DefaultWaitTimeout, "a shard waits this long for the other shards (their calls of a step, the previous step's markers) before giving up with exit 3 (0 = 1h)")
			fs.StringVar(&o.memory, "memory", "", "memory budget of the run's stages, e.g. 16GiB: train and sft size their micro-batches for it and refuse, before any work, a model that cannot fit (default: 3/4 of the machine's available memory; see docs/memory.md)")
			fs.StringVar(&o.device, "device", "", "where the model's forward, backward and head compute: cpu or cuda (GPU 0; needs bin/rljob-cuda from make build-cuda); default $RLJOB_DEVICE, else cpu; recorded in each call record and checkpoint manifest (docs/cuda.md)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "check the job (statements, stage names and arguments, SQL syntax) without running or writing anything")
			fs.DurationVar(&o.progressEvery, "progress-interval", defaultProgressInterval, "when stderr is not a terminal (Slurm, cron), log a long stage's progress (done/total, rate, ETA) this often; 0 = never")
		},
		run: o.runCmd,
	})
}

type runFlags struct {
	run    string
	steps  int
	until  int64
	seed   int64
	sets   []string
	shard  string
	dryRun bool
	// memory is --memory as given ("" = the machine's available memory).
	memory string
	// device is --device as given ("" = $RLJOB_DEVICE, else cpu).
	device string
	// waitTimeout bounds each wait for other shards.
	waitTimeout time.Duration
	// compactEvery: compact after every N-th step (0 = never).
	compactEvery int
	// progressEvery: interval of the progress lines in batch logs.
	progressEvery time.Duration
}

// check validates the flags that need no file system: one job file, and
// --steps and --until-step not negative.
func (o *runFlags) check(args []string) error {
	switch {
	case len(args) != 1:
		return &jobs.UsageError{Msg: fmt.Sprintf("run takes one job file, got %d arguments", len(args)), Hint: "rljob run JOB.sql [flags]"}
	case o.steps < 0:
		return &jobs.UsageError{Msg: fmt.Sprintf("--steps %d: must be >= 0", o.steps), Hint: "--steps N runs N iterations from the resume point"}
	case o.until < 0:
		return &jobs.UsageError{Msg: fmt.Sprintf("--until-step %d: must be >= 0", o.until), Hint: "--until-step S stops before step S (0 = no limit)"}
	case o.progressEvery < 0:
		return &jobs.UsageError{Msg: fmt.Sprintf("--progress-interval %s: must be >= 0", o.progressEvery), Hint: "e.g. --progress-interval 30s; 0 turns the progress lines off"}
	case o.compactEvery < 0:
		return &jobs.UsageError{Msg: fmt.Sprintf("--compact-every %d: must be >= 0", o.compactEvery), Hint: "e.g. --compact-every 10; 0 = never"}
	case o.waitTimeout < 0:
		return &jobs.UsageError{Msg: fmt.Sprintf("--wait-timeout %s: must be >= 0", o.waitTimeout), Hint: "e.g. --wait-timeout 2h (0 = the default, 1h)"}
	}
	if o.memory != "" {
		if _, err := jobs.ParseBytes(o.memory); err != nil {
			return &jobs.UsageError{Msg: "--memory " + err.Error(), Hint: "e.g. --memory 16GiB"}
		}
	}
	return nil
}

func (o *runFlags) runCmd(ctx context.Context, e *env, args []string) error {
	if err := o.check(args); err != nil {
		return err
	}
	shard, n, err := jobs.ParseShard(o.shard, e.getenv)
	if err != nil {
		return err
	}
	if err := checkLakeFlag(e.g.lake, false); err != nil {
		return err
	}
	budget := uint64(0)
	if o.memory != "" {
		budget, _ = jobs.ParseBytes(o.memory)
	}
	jobs.SetMemoryBudget(budget)
	if err := selectDevice(o.device, e.getenv); err != nil {
		return err
	}
	opts := jobs.Options{
		JobFile: args[0], Lake: e.g.lake, Run: o.run, Steps: o.steps, UntilStep: o.until, Seed: o.seed,
		Sets: o.sets, Shard: shard, NumShards: n, DryRun: o.dryRun, Log: e.log, WaitTimeout: o.waitTimeout, CompactEvery: o.compactEvery,
	}
	switch {
	case e.stderrTTY:
		opts.Progress = &barMaker{e: e}
	case o.progressEvery > 0:
		opts.Progress = &logProgress{log: e.log, every: o.progressEvery}
	}
	t0 := time.Now()
	res, err := jobs.Run(ctx, opts)
	if sig := interrupted(ctx); err != nil && sig != nil {
		ie := *sig
		if res != nil && !o.dryRun {
			ie.Step, ie.HasStep = res.FirstStep+int64(res.Steps), true
		}
		return &ie
	}
	if err != nil {
		return err
	}
	if o.dryRun {
		printPlan(e, res, opts)
		return nil
	}
	e.log.Info().Str("run", o.run).Int("steps", res.Steps).Int64("first_step", res.FirstStep).
		Int("skipped_calls", res.Skipped).Str("took", time.Since(t0).Round(time.Millisecond).String()).Msg("run finished")
	return nil
}

// printPlan writes the dry run's findings to stdout: one line per statement.
func printPlan(e *env, res *jobs.Result, o jobs.Options) {
	calls := 0
	for _, s := range res.Job.Stmts {
		first, _, _ := strings.Cut(strings.TrimSpace(s.Text), "\n")
		if len(first) > 70 {
			first = first[:67] + "..."
		}
		kind := "sql  "
		switch {
		case s.Loop != nil && s.Index == s.Loop.Head:
			kind = "loop "
			first = fmt.Sprintf("%s (at most %d iterations)", first, s.Loop.Max)
		case s.Loop != nil:
			kind = "end  "
		case s.Stage != nil:
			kind = "stage"
			calls++
			outs := s.Stage.Spec().Outputs(s.Args)
			first = fmt.Sprintf("%s -> %s", first, strings.Join(outs, ", "))
		}
		fmt.Fprintf(e.stdout, "%-22s %s %s\n", s.Pos.String()+":", kind, first)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(e.stdout, w.String())
	}
	fmt.Fprintf(e.stdout, "ok: %d statements, %d stage calls checked; run %q would start at step %d (shard %d/%d)\n",
		len(res.Job.Stmts), calls, o.Run, res.FirstStep, o.Shard, max(o.NumShards, 1))
}

// barMaker draws mpb progress bars on stderr. A bar appears only if its
// stage runs longer than a second (WithRenderDelay), so short stages print
// nothing.
type barMaker struct{ e *env }

func (b *barMaker) Bar(name string, total int64) jobs.Bar {
	delay := make(chan any)
	t := time.AfterFunc(time.Second, func() { close(delay) })
	p := mpb.New(mpb.WithOutput(b.e.stderr), mpb.WithRenderDelay(delay), mpb.WithWidth(40),
		mpb.WithAutoRefresh()) // bars are made only when stderr is a terminal
	bar := p.AddBar(total, mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name(name+" "), decor.CountersNoUnit("%d / %d")),
		mpb.AppendDecorators(decor.AverageSpeed(0, " %.1f "+unitOf(name)+"/s")))
	return &mpbBar{p: p, bar: bar, t: t}
}

type mpbBar struct {
	p   *mpb.Progress
	bar *mpb.Bar
	t   *time.Timer
}

func (m *mpbBar) Add(n int64) { m.bar.IncrInt64(n) }

func (m *mpbBar) Done() {
	m.t.Stop()
	m.bar.SetTotal(-1, true)
	m.p.Shutdown()
}
