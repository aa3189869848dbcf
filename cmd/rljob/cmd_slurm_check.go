package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/jobs"
)

// checkPipelineFiles compiles and checks every file of the pipeline as
// rljob run --dry-run does (statements, stage names and arguments, SQL
// syntax against the lake's views), before anything is submitted: a typo
// in the last file must not surface hours later, after the first jobs ran.
func checkPipelineFiles(ctx context.Context, plan []*plannedJob, lake string, o *slurmFlags) error {
	for _, j := range plan {
		if j.Skip {
			continue
		}
		var sets []string // as its script passes them (renderScript)
		for _, kv := range o.sets {
			if j.reads(kv) {
				sets = append(sets, kv)
			}
		}
		sets = append(sets, j.Sets...)
		_, err := jobs.Run(ctx, jobs.Options{JobFile: j.Path, Lake: lake, Run: o.run, Seed: o.seed, Sets: sets,
			Steps: j.Steps, DryRun: true, Log: zerolog.Nop()})
		if err != nil {
			return fmt.Errorf("slurm: %s (file %d of the pipeline) does not compile; nothing submitted: %w", j.Spec, j.Index, err)
		}
	}
	return nil
}

// arrayCapacity is what the capacity check needs of one array job.
type arrayCapacity struct {
	File        string
	Tasks       int    // array tasks: the shards, which run in lockstep
	CPUsPerTask int    // --cpus-per-task (1 when not given)
	Partition   string // --partition ("" = the default partition)
}

// arrayOf returns the capacity needs of j when it is an array.
func arrayOf(j *plannedJob, global []string) (arrayCapacity, bool) {
	if j.Array == "" || j.Skip {
		return arrayCapacity{}, false
	}
	lo, hi, err := arrayRange(j.Array)
	if err != nil {
		return arrayCapacity{}, false
	}
	a := arrayCapacity{File: j.Path, Tasks: hi - lo + 1, CPUsPerTask: 1}
	for _, o := range append(append([]string{}, global...), j.Sbatch...) { // the file's own options win
		m := sbatchOpt.FindStringSubmatch(o)
		if m == nil {
			continue
		}
		v := strings.TrimPrefix(m[2], "=")
		switch m[1] {
		case "partition":
			a.Partition = v
		case "cpus-per-task":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				a.CPUsPerTask = n
			}
		}
	}
	return a, true
}

// partitionCPUs reads the CPU count of each partition from the output of
// sinfo --noheader --format='%P %C' (a line "NAME A/I/O/T" per partition;
// the default partition's name ends in '*'). def names the default.
func partitionCPUs(out string) (cpus map[string]int, def string) {
	cpus = map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		name := f[0]
		if strings.HasSuffix(name, "*") {
			name = strings.TrimSuffix(name, "*")
			def = name
		}
		counts := strings.Split(f[1], "/")
		if len(counts) != 4 {
			continue
		}
		if n, err := strconv.Atoi(counts[3]); err == nil {
			cpus[name] += n
		}
	}
	return cpus, def
}

// capacityWarning says when an array asks for more CPUs at once than its
// partition has ("" when it fits, or when sinfo did not say). Its tasks
// are shards in lockstep: each waits at every step for all the others, so
// tasks that cannot start keep the running ones waiting until
// --wait-timeout, and the array never finishes.
func capacityWarning(a arrayCapacity, sinfoOut string) string {
	cpus, def := partitionCPUs(sinfoOut)
	part := a.Partition
	if part == "" {
		part = def
	}
	total, ok := cpus[part]
	if !ok || total <= 0 {
		return ""
	}
	need := a.Tasks * a.CPUsPerTask
	if need <= total {
		return ""
	}
	fit := max(1, total/a.CPUsPerTask)
	return fmt.Sprintf("warning: %s is an array of %d tasks × %d CPUs = %d CPUs that run in lockstep (each waits for all the others at every step), "+
		"but partition %s has %d CPUs in all: the tasks that cannot start keep the others waiting until --wait-timeout. "+
		"Use at most %d tasks (:--array=0-%d), fewer CPUs per task, or a larger partition",
		a.File, a.Tasks, a.CPUsPerTask, need, part, total, fit, fit-1)
}

// sinfoTimeout bounds the sinfo call of the capacity check.
const sinfoTimeout = 20 * time.Second

// warnCapacity prints capacityWarning for each array of the plan, from
// sinfo on PATH; without sinfo, or when it fails, it says nothing.
func warnCapacity(ctx context.Context, e *env, plan []*plannedJob, global []string) {
	sinfo, err := exec.LookPath("sinfo")
	if err != nil {
		return
	}
	var out string
	for _, j := range plan {
		a, ok := arrayOf(j, global)
		if !ok {
			continue
		}
		if out == "" {
			ctx, cancel := context.WithTimeout(ctx, sinfoTimeout)
			var b bytes.Buffer
			cmd := exec.CommandContext(ctx, sinfo, "--noheader", "--format=%P %C")
			cmd.Stdout = &b
			err := cmd.Run()
			cancel()
			if err != nil {
				e.log.Debug().Err(err).Msg("sinfo failed: array sizes not checked against the partition")
				return
			}
			out = b.String()
		}
		if w := capacityWarning(a, out); w != "" {
			fmt.Fprintln(e.stderr, w)
		}
	}
}
