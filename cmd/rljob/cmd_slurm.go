package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/pflag"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
)

// rljob slurm submit: a pipeline of job files as a chain of Slurm jobs.
//
// The files run one after another in one run of the lake, each owning a
// contiguous range of step numbers: with --first-step 0 and files of 1, 1,
// 100 and 1 steps, prepare owns step 0, sft step 1, grpo steps 2..101 and
// eval step 102. Each file becomes one sbatch script running
//
//	rljob run FILE --lake L --run R --seed S --steps N --until-step END
//
// so that a job started again (a requeue, a rerun of the pipeline) finishes
// its range and never runs past it. A file submitted with --array is a Slurm
// job array whose tasks are the shards (the runner takes the shard from
// SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT and
// the shards run every step in lockstep). Each job depends on the one before
// with --dependency=afterok (and --kill-on-invalid-dep=yes, so a failed job,
// or a failed array task, cancels the rest of the chain instead of leaving
// it pending).
//
// Resume: before submitting, the run's step markers are read; a file whose
// whole range is complete is skipped (after checking that its last step was
// made by the same job file), and the chain starts at the first file with
// work left. Each submission is recorded in the lake table slurm_jobs (one
// unit per sbatch, at the file's first step), so `rljob sql "SELECT * FROM
// slurm_jobs"` tells which Slurm job was meant to write which steps.

func init() {
	o := &slurmFlags{}
	register(&command{
		name:  "slurm",
		usage: "submit FILE.sql[:--steps=N][:--array=0-3][:--SBATCH-OPTION=V]... [FILE2.sql...] --run R [--sbatch OPT]... [--dry-run]",
		short: "submit a pipeline of job files to Slurm: one sbatch job per file, chained with afterok; sharded files as job arrays",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.run, "run", "main", "run name: every file of the pipeline runs in it, one range of steps after another")
			fs.Int64Var(&o.seed, "seed", 0, "run seed (rljob run --seed)")
			fs.Int64Var(&o.firstStep, "first-step", 0, "step number of the pipeline's first step (0 for a new run)")
			fs.IntVar(&o.steps, "steps", 1, "steps of a file without its own :--steps=N")
			fs.StringArrayVar(&o.sets, "set", nil, "rljob run --set key=value for every file that reads the variable (repeatable)")
			fs.StringArrayVar(&o.sbatch, "sbatch", nil, "sbatch option for every job, e.g. --sbatch=--partition=gpu --sbatch=--time=2:00:00 (repeatable)")
			fs.StringVar(&o.dir, "dir", "", "folder for the sbatch scripts and the jobs' logs (default rljob-slurm/RUN)")
			fs.StringVar(&o.bin, "rljob", "", "rljob binary the jobs run, on a filesystem the compute nodes share (default: this binary)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the sbatch scripts and what would be skipped; submit nothing, write nothing")
		},
		run: o.runCmd,
	})
}

type slurmFlags struct {
	run       string
	seed      int64
	firstStep int64
	steps     int
	sets      []string
	sbatch    []string
	dir, bin  string
	dryRun    bool
}

// pipelineFile is one FILE[:opt...] argument.
type pipelineFile struct {
	Spec   string   // the argument as given
	Path   string   // absolute path of the job file
	Steps  int      // --steps
	Sets   []string // --set key=value of this file
	Array  string   // --array value ("" = not an array)
	Sbatch []string // other sbatch options, as --name=value
}

// managedSbatch are sbatch options rljob slurm sets itself.
var managedSbatch = map[string]string{
	"dependency":          "the chain's --dependency=afterok is set by rljob slurm",
	"parsable":            "rljob slurm reads the job id with --parsable itself",
	"wrap":                "rljob slurm writes the script",
	"kill-on-invalid-dep": "rljob slurm sets --kill-on-invalid-dep=yes",
}

var sbatchOpt = regexp.MustCompile(`^--([a-z][a-z0-9-]*)(=.*)?$`)

// parseFileSpec parses FILE[:--opt=value]...: --steps=N and --set=k=v go to
// rljob run, everything else to sbatch. A colon inside a value (--time=1:00:00)
// is kept: an option starts only at a colon followed by "--".
func parseFileSpec(spec string, defSteps int) (pipelineFile, error) {
	parts := splitSpec(spec)
	f := pipelineFile{Spec: spec, Path: parts[0], Steps: defSteps}
	hint := "write FILE.sql:--steps=N:--array=0-3:--time=1:00:00 (options after colons, each --name=value)"
	if f.Path == "" {
		return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: no job file before the options", spec), Hint: hint}
	}
	if i := strings.Index(f.Path, ":-"); i >= 0 {
		return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: bad option %q", spec, f.Path[i:]), Hint: hint}
	}
	for _, p := range parts[1:] {
		m := sbatchOpt.FindStringSubmatch(p)
		if m == nil {
			return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: bad option %q", spec, p), Hint: hint}
		}
		name, val := m[1], strings.TrimPrefix(m[2], "=")
		switch {
		case name == "steps":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: --steps=%s: want a whole number >= 1", spec, val), Hint: hint}
			}
			f.Steps = n
		case name == "set":
			if !strings.Contains(val, "=") {
				return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: --set=%s: want --set=key=value", spec, val), Hint: hint}
			}
			f.Sets = append(f.Sets, val)
		case name == "array" || name == "a":
			if _, _, err := arrayRange(val); err != nil {
				return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: --array=%s: %v", spec, val, err),
					Hint: "a contiguous range such as --array=0-3 (the tasks are the shards; no lists, steps or %% limits)"}
			}
			f.Array = val
		case name == "until-step" || name == "run" || name == "seed" || name == "lake" || name == "shard":
			return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: --%s is set by rljob slurm for the whole pipeline", spec, name),
				Hint: "give --run, --seed, --lake and --first-step to rljob slurm submit; the steps of each file follow from the order"}
		case managedSbatch[name] != "":
			return f, &jobs.UsageError{Msg: fmt.Sprintf("%q: --%s: %s", spec, name, managedSbatch[name])}
		default:
			f.Sbatch = append(f.Sbatch, p)
		}
	}
	return f, nil
}

// splitSpec splits at each ":" that is followed by "--".
func splitSpec(spec string) []string {
	var parts []string
	for {
		i := strings.Index(spec, ":--")
		if i < 0 {
			return append(parts, spec)
		}
		parts = append(parts, spec[:i])
		spec = spec[i+1:]
	}
}

// arrayRange parses a contiguous array range "a-b" or "a".
func arrayRange(v string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(v, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("not a range a-b with 0 <= a <= b")
	}
	return lo, hi, nil
}

// checkSbatchOpts validates the global --sbatch options.
func checkSbatchOpts(opts []string) error {
	for _, o := range opts {
		m := sbatchOpt.FindStringSubmatch(o)
		if m == nil {
			return &jobs.UsageError{Msg: fmt.Sprintf("--sbatch %q: want a long option --name or --name=value", o), Hint: "e.g. --sbatch=--partition=gpu --sbatch=--time=2:00:00"}
		}
		if why := managedSbatch[m[1]]; why != "" {
			return &jobs.UsageError{Msg: fmt.Sprintf("--sbatch %q: %s", o, why)}
		}
		if m[1] == "array" {
			return &jobs.UsageError{Msg: fmt.Sprintf("--sbatch %q: arrays are per file", o), Hint: "write FILE.sql:--array=0-3 for the sharded file"}
		}
	}
	return nil
}

// plannedJob is one file of the pipeline with its step range and what
// happens to it.
type plannedJob struct {
	pipelineFile
	Index      int // 1-based position in the pipeline
	First, End int64
	SHA256     string
	// Reads are the variables the file reads (nil: unknown, a computed
	// getvariable name): a pipeline-wide --set goes to the files that read it.
	Reads      map[string]bool
	Skip       bool   // its range is complete
	Script     string // the sbatch script
	ScriptPath string
}

// planPipeline assigns step ranges from first, reads the files' sha256 and
// marks the files whose range is complete (next = the run's resume step).
// shaOf returns the job_sha256 recorded for a complete step ("" unknown).
func planPipeline(files []pipelineFile, first, next int64, shaOf func(step int64) string) ([]*plannedJob, error) {
	var out []*plannedJob
	at := first
	for i, f := range files {
		src, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, &jobs.UsageError{Msg: fmt.Sprintf("cannot read job file %s (from %q)", f.Path, f.Spec), Err: err}
		}
		job, err := jobs.CompileJob(f.Path, string(src), nil) // its identity covers its INCLUDEs
		if err != nil {
			return nil, err
		}
		j := &plannedJob{pipelineFile: f, Index: i + 1, First: at, End: at + int64(f.Steps), SHA256: job.SHA256}
		if names, known := jobs.VariablesRead(job); known {
			j.Reads = map[string]bool{}
			for _, n := range names {
				j.Reads[n] = true
			}
		}
		at = j.End
		// Every complete step of the range must come from this file: a
		// pipeline submitted again in another order, or with other
		// --steps, would otherwise skip or resume the wrong file.
		for s := j.First; s < j.End && s < next; s++ {
			if got := shaOf(s); got != "" && got != j.SHA256 {
				return nil, &jobs.UsageError{
					Msg: fmt.Sprintf("%s would own steps %d..%d, but step %d of the run was made by another job file (sha256 %.12s, this file %.12s)",
						f.Path, j.First, j.End-1, s, got, j.SHA256),
					Hint: "the pipeline's files, their order or their --steps differ from the submission that made the run; submit the same pipeline, or use another --run / --first-step",
				}
			}
		}
		j.Skip = next >= j.End
		out = append(out, j)
	}
	return out, nil
}

// reads reports whether the file reads the variable of a "key=value".
func (j *plannedJob) reads(kv string) bool {
	k, _, _ := strings.Cut(kv, "=")
	return j.Reads == nil || j.Reads[strings.ToLower(strings.TrimSpace(k))]
}

// checkPipelineSets refuses a pipeline-wide --set that no file reads, and a
// file's own --set that the file does not read (rljob run would refuse it
// on the node).
func checkPipelineSets(plan []*plannedJob, sets []string) error {
	for _, kv := range sets {
		read := false
		for _, j := range plan {
			read = read || j.reads(kv)
		}
		if !read {
			return &jobs.UsageError{Msg: fmt.Sprintf("--set %s: no file of the pipeline reads this variable (getvariable)", kv),
				Hint: "check its spelling; rljob run --dry-run FILE --set " + kv + " names the variables a file reads"}
		}
	}
	for _, j := range plan {
		for _, kv := range j.Sets {
			if !j.reads(kv) {
				return &jobs.UsageError{Msg: fmt.Sprintf("%s: --set=%s: the file does not read this variable (getvariable)", j.Spec, kv),
					Hint: "rljob run --dry-run " + j.Path + " --set " + kv + " names the variables it reads"}
			}
		}
	}
	return nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if s != "" && shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// scriptParams is what a script needs beyond its job.
type scriptParams struct {
	Bin, Lake, Run, Dir, Workdir string
	Seed                         int64
	Sets, Sbatch                 []string
}

// renderScript writes job j's sbatch script.
func renderScript(j *plannedJob, p scriptParams) string {
	var b strings.Builder
	name := strings.TrimSuffix(filepath.Base(j.Path), filepath.Ext(j.Path))
	fmt.Fprintf(&b, "#!/bin/sh\n")
	fmt.Fprintf(&b, "# rljob slurm: %s of run %s, steps %d..%d (file %d of the pipeline)\n", j.Path, p.Run, j.First, j.End-1, j.Index)
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", shellQuote("rljob-"+p.Run+"-"+name))
	if j.Array != "" {
		fmt.Fprintf(&b, "#SBATCH --array=%s\n", j.Array)
		fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(p.Dir, fmt.Sprintf("%02d-%s-%%A_%%a.out", j.Index, name)))
	} else {
		fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(p.Dir, fmt.Sprintf("%02d-%s-%%j.out", j.Index, name)))
	}
	for _, o := range append(append([]string{}, p.Sbatch...), j.Sbatch...) {
		fmt.Fprintf(&b, "#SBATCH %s\n", o)
	}
	fmt.Fprintf(&b, "set -eu\ncd %s\n", shellQuote(p.Workdir))
	args := []string{p.Bin, "run", j.Path, "--lake", p.Lake, "--run", p.Run,
		"--seed", strconv.FormatInt(p.Seed, 10), "--steps", strconv.Itoa(j.Steps), "--until-step", strconv.FormatInt(j.End, 10)}
	for _, s := range p.Sets {
		if j.reads(s) { // rljob run refuses a --set its job does not read
			args = append(args, "--set", s)
		}
	}
	for _, s := range j.Sets {
		args = append(args, "--set", s)
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	fmt.Fprintf(&b, "exec %s\n", strings.Join(args, " "))
	return b.String()
}

func (o *slurmFlags) runCmd(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "submit" {
		return &jobs.UsageError{Msg: "rljob slurm takes a subcommand: submit", Hint: "rljob slurm submit prepare.sql sft.sql grpo.sql:--steps=100:--array=0-3 --run R"}
	}
	args = args[1:]
	if len(args) == 0 {
		return &jobs.UsageError{Msg: "no job file given", Hint: "rljob slurm submit FILE.sql[:--steps=N][:--array=0-3] ..."}
	}
	if o.steps < 1 {
		return &jobs.UsageError{Msg: fmt.Sprintf("--steps %d: must be >= 1", o.steps)}
	}
	if o.firstStep < 0 {
		return &jobs.UsageError{Msg: fmt.Sprintf("--first-step %d: must be >= 0", o.firstStep)}
	}
	if err := (arrowio.Unit{Table: "slurm_jobs", Run: o.run}).Validate(); err != nil {
		return &jobs.UsageError{Msg: fmt.Sprintf("--run %q", o.run), Err: err}
	}
	if err := checkSbatchOpts(o.sbatch); err != nil {
		return err
	}
	for _, s := range o.sets {
		if !strings.Contains(s, "=") {
			return &jobs.UsageError{Msg: fmt.Sprintf("--set %q: want key=value", s)}
		}
	}
	var files []pipelineFile
	for _, a := range args {
		f, err := parseFileSpec(a, o.steps)
		if err != nil {
			return err
		}
		if f.Path, err = filepath.Abs(f.Path); err != nil {
			return err
		}
		files = append(files, f)
	}
	if err := checkLakeFlag(e.g.lake, false); err != nil {
		return err
	}
	lakeAbs, err := filepath.Abs(e.g.lake)
	if err != nil {
		return err
	}
	next, shas, err := runProgress(lakeAbs, o.run)
	if err != nil {
		return err
	}
	plan, err := planPipeline(files, o.firstStep, next, func(s int64) string { return shas[s] })
	if err != nil {
		return err
	}
	if err := checkPipelineSets(plan, o.sets); err != nil {
		return err
	}
	bin := o.bin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("slurm: cannot find this binary's path (give --rljob PATH): %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		dir = filepath.Join("rljob-slurm", o.run)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	p := scriptParams{Bin: bin, Lake: lakeAbs, Run: o.run, Dir: dir, Workdir: wd, Seed: o.seed, Sets: o.sets, Sbatch: o.sbatch}
	for _, j := range plan {
		j.Script = renderScript(j, p)
		j.ScriptPath = filepath.Join(dir, fmt.Sprintf("%02d-%s.sbatch", j.Index, strings.TrimSuffix(filepath.Base(j.Path), filepath.Ext(j.Path))))
	}
	if err := checkPipelineFiles(ctx, plan, lakeAbs, o); err != nil {
		return err
	}
	warnCapacity(ctx, e, plan, o.sbatch)
	if o.dryRun {
		return printPlanScripts(e.stdout, plan, next, o.run)
	}
	sbatch, err := exec.LookPath("sbatch")
	if err != nil {
		return &jobs.UsageError{Msg: "sbatch not found on PATH", Hint: "run rljob slurm submit on a Slurm login node (or see the scripts with --dry-run)"}
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("slurm: create %s: %w", dir, err)
	}
	lake, err := arrowio.OpenLake(lakeAbs)
	if err != nil {
		return err
	}
	prev := ""
	submitted := 0
	for _, j := range plan {
		if j.Skip {
			fmt.Fprintf(e.stdout, "skip   %02d %s: steps %d..%d complete\n", j.Index, j.Path, j.First, j.End-1)
			continue
		}
		if err := os.WriteFile(j.ScriptPath, []byte(j.Script), 0o755); err != nil {
			return fmt.Errorf("slurm: write %s: %w", j.ScriptPath, err)
		}
		sargs := []string{"--parsable"}
		if prev != "" {
			sargs = append(sargs, "--dependency=afterok:"+prev, "--kill-on-invalid-dep=yes")
		}
		sargs = append(sargs, j.ScriptPath)
		id, err := runSbatch(ctx, sbatch, sargs)
		if err != nil {
			return fmt.Errorf("slurm: submit %s (%d jobs submitted before it; rerun the same command to resume): %w", j.ScriptPath, submitted, err)
		}
		if err := recordJob(lake, o.run, j, id, prev, sargs); err != nil {
			return fmt.Errorf("slurm: job %s submitted, but recording it in the lake failed: %w", id, err)
		}
		dep := ""
		if prev != "" {
			dep = " after " + prev
		}
		arr := ""
		if j.Array != "" {
			arr = " array " + j.Array
		}
		fmt.Fprintf(e.stdout, "submit %02d %s: job %s%s%s, steps %d..%d (%s)\n", j.Index, j.Path, id, arr, dep, j.First, j.End-1, j.ScriptPath)
		prev = id
		submitted++
	}
	if submitted == 0 {
		fmt.Fprintf(e.stdout, "ok: run %s is complete through step %d; nothing to submit\n", o.run, next-1)
	}
	return nil
}

// runProgress returns the run's resume step and the job_sha256 of each
// complete step (from the step markers; any shard's).
func runProgress(lake, run string) (int64, map[int64]string, error) {
	shas := map[int64]string{}
	if _, err := os.Stat(filepath.Join(lake, arrowio.TableSteps)); errors.Is(err, os.ErrNotExist) {
		return 0, shas, nil
	}
	l := &arrowio.Lake{Root: lake}
	st, err := l.ReadStepStatus(run)
	if err != nil {
		return 0, nil, &jobs.DataError{Msg: "slurm: cannot read the run's step markers", Err: err}
	}
	ms, err := l.StepMarkers(run)
	if err != nil {
		return 0, nil, &jobs.DataError{Msg: "slurm: cannot read the run's step markers", Err: err}
	}
	for _, m := range ms {
		if m.JobSHA256 != "" {
			shas[m.Step] = m.JobSHA256
		}
	}
	return st.Next, shas, nil
}

// runSbatch runs sbatch --parsable and returns the job id.
func runSbatch(ctx context.Context, sbatch string, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, sbatch, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sbatch %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	// --parsable prints "id" or "id;cluster".
	id, _, _ := strings.Cut(strings.TrimSpace(out.String()), ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("sbatch %s printed %q, not a job id", strings.Join(args, " "), out.String())
	}
	return id, nil
}

// slurmJobsSchema is the file schema of the lake table slurm_jobs: one row
// per sbatch submission (run and step, the file's first step, from the
// path; call numbers the submissions of that step).
func slurmJobsSchema() *arrow.Schema {
	s := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	i := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Int64, Nullable: true}
	}
	return arrow.NewSchema([]arrow.Field{
		s("slurm_job_id"), s("job_file"), s("job_sha256"), i("first_step"), i("until_step"), s("array_tasks"),
		s("dependency"), s("sbatch_args"), s("script"), s("script_path"),
		{Name: "submitted_at", Type: arrowio.TimestampUTC, Nullable: true},
	}, nil)
}

// recordJob commits one slurm_jobs row for a submitted job, at the file's
// first step, as the first free call number there.
func recordJob(lake *arrowio.Lake, run string, j *plannedJob, id, dep string, sargs []string) error {
	sch := slurmJobsSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	str(0, id)
	str(1, j.Path)
	str(2, j.SHA256)
	b.Field(3).(*array.Int64Builder).Append(j.First)
	b.Field(4).(*array.Int64Builder).Append(j.End)
	str(5, j.Array)
	if dep != "" {
		str(6, "afterok:"+dep)
	} else {
		b.Field(6).AppendNull()
	}
	str(7, strings.Join(sargs, " "))
	str(8, j.Script)
	str(9, j.ScriptPath)
	b.Field(10).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Now().UnixMicro()))
	rec := b.NewRecordBatch()
	defer rec.Release()
	for call := 0; call < 10000; call++ {
		u := arrowio.Unit{Table: "slurm_jobs", Run: run, Step: j.First, Call: call}
		if ok, err := lake.IsCommitted(u); err != nil {
			return err
		} else if ok {
			continue
		}
		st, err := lake.Begin(u, map[string]any{"slurm_job_id": id, "job_file": j.Path})
		if err != nil {
			return err
		}
		rr, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
		if err != nil {
			st.Abort()
			return err
		}
		_, err = st.WriteRecords("", sch, rr)
		rr.Release()
		if err != nil {
			st.Abort()
			return err
		}
		if _, err := st.Commit(); errors.Is(err, arrowio.ErrAlreadyCommitted) {
			continue // another submit took this call number
		} else if err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("slurm_jobs: no free call number at step %d", j.First)
}

// printPlanScripts is --dry-run's output: per file, skipped or the sbatch
// command and script it would submit.
func printPlanScripts(w io.Writer, plan []*plannedJob, next int64, run string) error {
	fmt.Fprintf(w, "# run %s resumes at step %d\n", run, next)
	prev := ""
	for _, j := range plan {
		if j.Skip {
			fmt.Fprintf(w, "\n# skip %02d %s: steps %d..%d complete\n", j.Index, j.Path, j.First, j.End-1)
			continue
		}
		cmd := "sbatch --parsable"
		if prev != "" {
			cmd += fmt.Sprintf(" --dependency=afterok:<job of %s> --kill-on-invalid-dep=yes", prev)
		}
		fmt.Fprintf(w, "\n# %s %s\n%s", cmd, j.ScriptPath, j.Script)
		prev = fmt.Sprintf("%02d", j.Index)
	}
	return nil
}
