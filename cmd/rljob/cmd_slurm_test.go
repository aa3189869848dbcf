package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseFileSpec(t *testing.T) {
	tests := []struct {
		spec string
		want pipelineFile
		err  string
	}{
		{spec: "a.sql", want: pipelineFile{Spec: "a.sql", Path: "a.sql", Steps: 1}},
		{spec: "grpo.sql:--steps=100:--array=0-3", want: pipelineFile{Spec: "grpo.sql:--steps=100:--array=0-3", Path: "grpo.sql", Steps: 100, Array: "0-3"}},
		{spec: "g.sql:--time=1:00:00:--gres=gpu:1:--set=lr=1e-3", want: pipelineFile{Spec: "g.sql:--time=1:00:00:--gres=gpu:1:--set=lr=1e-3", Path: "g.sql", Steps: 1,
			Sets: []string{"lr=1e-3"}, Sbatch: []string{"--time=1:00:00", "--gres=gpu:1"}}},
		{spec: "a.sql:--array=1-4", want: pipelineFile{Spec: "a.sql:--array=1-4", Path: "a.sql", Steps: 1, Array: "1-4"}},
		{spec: "a.sql:--steps=0", err: "--steps=0: want a whole number >= 1"},
		{spec: "a.sql:--steps=x", err: "--steps=x: want a whole number >= 1"},
		{spec: "a.sql:--array=0,2", err: "--array=0,2: not a range"},
		{spec: "a.sql:--array=3-1", err: "--array=3-1: not a range"},
		{spec: "a.sql:--dependency=afterok:1", err: "--dependency: the chain's --dependency=afterok is set by rljob slurm"},
		{spec: "a.sql:--until-step=5", err: "--until-step is set by rljob slurm"},
		{spec: "a.sql:--set=x", err: "--set=x: want --set=key=value"},
		{spec: ":--steps=2", err: "no job file before the options"},
		{spec: "a.sql:-p=x", err: `bad option ":-p=x"`},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := parseFileSpec(tc.spec, 1)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// fakeSlurm puts testdata/slurm/sbatch (which runs a script at once) first
// on PATH, makes the scripts' rljob the test binary, and returns the fake's
// state folder.
func fakeSlurm(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	fake, err := filepath.Abs("testdata/slurm")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fake+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_SLURM_DIR", d)
	t.Setenv("FAKE_SLURM_FAIL", "")
	t.Setenv("RLJOB_TEST_MAIN", "1") // the test binary acts as rljob (TestMain)
	return d
}

// pipeline is the test pipeline: score (steps 0..2, 2 shards as a job
// array), summary (step 3), score again unsharded (steps 4..5).
//
// The sharded file comes first: a sharded file after steps made with
// another shard count waits forever for their missing shard markers
// (jobs.stepper.waitStep counts the markers of step S-1 against this
// runner's --shard n, not the n recorded for S-1).
func pipeline(t *testing.T) []string {
	t.Helper()
	p := func(f string) string {
		abs, err := filepath.Abs(filepath.Join("testdata/slurm", f))
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return []string{p("score.sql") + ":--steps=3:--array=0-1:--time=10:00", p("summary.sql"), p("score.sql") + ":--steps=2"}
}

func submit(t *testing.T, lake, dir string, extra ...string) (int, string, string) {
	t.Helper()
	bin, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"slurm", "submit"}, pipeline(t)...)
	args = append(args, "--lake", lake, "--run", "r", "--seed", "7", "--rljob", bin, "--dir", dir, "--sbatch=--cpus-per-task=1")
	return rljob(t, nil, append(args, extra...)...)
}

func readOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// sqlOut runs rljob sql on lake and returns stdout.
func sqlOut(t *testing.T, lake, q string) string {
	t.Helper()
	code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", q)
	if code != 0 {
		t.Fatalf("sql %s: exit %d: %s", q, code, stderr)
	}
	return out
}

// unshardedLake runs the pipeline's files with rljob run, one shard.
func unshardedLake(t *testing.T) string {
	t.Helper()
	lake := filepath.Join(t.TempDir(), "lake")
	for _, spec := range pipeline(t) {
		f := splitSpec(spec)[0]
		steps := "1"
		if m := regexp.MustCompile(`--steps=(\d+)`).FindStringSubmatch(spec); m != nil {
			steps = m[1]
		}
		if code, _, stderr := rljob(t, nil, "run", f, "--lake", lake, "--run", "r", "--seed", "7", "--steps", steps, "--log-format", "json"); code != 0 {
			t.Fatalf("run %s: exit %d: %s", f, code, stderr)
		}
	}
	return lake
}

const rewardsQuery = "SELECT step, rollout_id, reward FROM rewards WHERE run = 'r' ORDER BY step, rollout_id"

func TestSlurmDryRun(t *testing.T) {
	state := fakeSlurm(t)
	dir := filepath.Join(t.TempDir(), "scripts")
	lake := filepath.Join(t.TempDir(), "lake")
	code, out, stderr := submit(t, lake, dir, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"# run r resumes at step 0",
		"# sbatch --parsable " + filepath.Join(dir, "01-score.sbatch"),
		"# sbatch --parsable --dependency=afterok:<job of 01> --kill-on-invalid-dep=yes " + filepath.Join(dir, "02-summary.sbatch"),
		"# sbatch --parsable --dependency=afterok:<job of 02> --kill-on-invalid-dep=yes " + filepath.Join(dir, "03-score.sbatch"),
		"#SBATCH --array=0-1\n",
		"#SBATCH --output=" + filepath.Join(dir, "01-score-%A_%a.out"),
		"#SBATCH --output=" + filepath.Join(dir, "02-summary-%j.out"),
		"#SBATCH --cpus-per-task=1\n#SBATCH --time=10:00\n",
		"--run r --seed 7 --steps 3 --until-step 3\n",
		"--steps 1 --until-step 4\n",
		"--steps 2 --until-step 6\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if calls := readOr(filepath.Join(state, "calls")); calls != "" {
		t.Errorf("dry run called sbatch: %s", calls)
	}
	for _, p := range []string{dir, lake} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("dry run created %s", p)
		}
	}
}

// TestSlurmPipeline: the pipeline through (fake) sbatch: jobs chained with
// afterok, the sharded file as a 2-task array whose union equals an
// unsharded run, the job ids in slurm_jobs, and a second submit that finds
// nothing to do.
func TestSlurmPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs eight rljob processes; skipped under -short")
	}
	state := fakeSlurm(t)
	dir := filepath.Join(t.TempDir(), "scripts")
	lake := filepath.Join(t.TempDir(), "lake")
	code, out, stderr := submit(t, lake, dir)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s\nfake slurm log:\n%s", code, out, stderr, readOr(filepath.Join(state, "log")))
	}
	calls := strings.Split(strings.TrimSpace(readOr(filepath.Join(state, "calls"))), "\n")
	want := []string{
		"--parsable " + filepath.Join(dir, "01-score.sbatch"),
		"--parsable --dependency=afterok:101 --kill-on-invalid-dep=yes " + filepath.Join(dir, "02-summary.sbatch"),
		"--parsable --dependency=afterok:102 --kill-on-invalid-dep=yes " + filepath.Join(dir, "03-score.sbatch"),
	}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("sbatch calls:\n%s\nwant\n%s\nlog:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"), readOr(filepath.Join(state, "log")))
	}
	for _, w := range []string{"job 101 array 0-1, steps 0..2", "job 102 after 101, steps 3..3", "job 103 after 102, steps 4..5"} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	// Both array tasks ran as shards of 2.
	for i := 0; i < 2; i++ {
		log := readOr(filepath.Join(dir, fmt.Sprintf("01-score-101_%d.out", i)))
		if !strings.Contains(log, `"message":"run finished"`) {
			t.Errorf("task %d log:\n%s", i, log)
		}
	}
	if got, want := sqlOut(t, lake, rewardsQuery), sqlOut(t, unshardedLake(t), rewardsQuery); got != want || strings.Count(got, "\n") != 41 {
		t.Errorf("rewards through slurm:\n%s\nunsharded:\n%s", got, want)
	}
	if got := sqlOut(t, lake, "SELECT step, slurm_job_id, array_tasks, dependency, until_step FROM slurm_jobs ORDER BY step"); got != "step,slurm_job_id,array_tasks,dependency,until_step\n0,101,0-1,,3\n3,102,,afterok:101,4\n4,103,,afterok:102,6\n" {
		t.Errorf("slurm_jobs:\n%s", got)
	}
	if got := sqlOut(t, lake, "SELECT value FROM metrics WHERE run = 'r' AND name = 'rewards'"); got != "value\n24.0\n" {
		t.Errorf("summary metric: %q", got)
	}

	// slurm_jobs is an ordinary lake table: listed and verified.
	if code, out, stderr := rljob(t, nil, "lake", "ls", "--lake", lake); code != 0 || !regexp.MustCompile(`slurm_jobs\s*\|\s*r\s*\|\s*3 `).MatchString(out) {
		t.Errorf("lake ls: exit %d:\n%s%s", code, out, stderr)
	}
	if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
		t.Errorf("lake verify: exit %d:\n%s%s", code, out, stderr)
	}

	// Submitting again: everything is complete.
	code, out, stderr = submit(t, lake, dir)
	if code != 0 || !strings.Contains(out, "nothing to submit") || strings.Count(out, "skip ") != 3 {
		t.Errorf("second submit: exit %d:\n%s%s", code, out, stderr)
	}
	if n := len(strings.Split(strings.TrimSpace(readOr(filepath.Join(state, "calls"))), "\n")); n != 3 {
		t.Errorf("second submit called sbatch: %d calls in all", n)
	}
}

// TestSlurmFailureResume: a failed job cancels its dependants; a failed
// array task (after its shard's work) does too; each rerun of the same
// submit skips the complete files and finishes the pipeline.
func TestSlurmFailureResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dozen rljob processes; skipped under -short")
	}
	state := fakeSlurm(t)
	dir := filepath.Join(t.TempDir(), "scripts")
	lake := filepath.Join(t.TempDir(), "lake")

	t.Setenv("FAKE_SLURM_FAIL", "01-score") // the array job fails before running
	if code, out, stderr := submit(t, lake, dir); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	log := readOr(filepath.Join(state, "log"))
	if !strings.Contains(log, "101 01-score failed") || !strings.Contains(log, "102 02-summary cancelled: dependency 101 failed") ||
		!strings.Contains(log, "103 03-score cancelled: dependency 102 failed") {
		t.Fatalf("fake slurm log:\n%s", log)
	}
	if got := sqlOut(t, lake, "SELECT count(*) AS n FROM rewards"); got != "n\n0\n" {
		t.Errorf("rewards after the failure: %q", got)
	}

	t.Setenv("FAKE_SLURM_FAIL", "01-score:1") // task 1 fails after its shard ran
	code, out, stderr := submit(t, lake, dir)
	if code != 0 || strings.Contains(out, "skip ") || !strings.Contains(out, "job 104 array 0-1, steps 0..2") {
		t.Fatalf("rerun 1: exit %d:\n%s%s", code, out, stderr)
	}
	if log := readOr(filepath.Join(state, "log")); !strings.Contains(log, "104 01-score ok=0") || !strings.Contains(log, "105 02-summary cancelled") {
		t.Fatalf("fake slurm log:\n%s", log)
	}

	t.Setenv("FAKE_SLURM_FAIL", "")
	code, out, stderr = submit(t, lake, dir)
	if code != 0 || strings.Count(out, "skip ") != 1 || !strings.Contains(out, "job 107, steps 3..3") || !strings.Contains(out, "job 108 after 107, steps 4..5") {
		t.Fatalf("rerun 2: exit %d:\n%s%s", code, out, stderr)
	}
	if got, want := sqlOut(t, lake, rewardsQuery), sqlOut(t, unshardedLake(t), rewardsQuery); got != want {
		t.Errorf("rewards after resume:\n%s\nunsharded:\n%s", got, want)
	}
	// Every submission is recorded, the failed ones too.
	if got := sqlOut(t, lake, "SELECT string_agg(slurm_job_id, ' ' ORDER BY slurm_job_id) AS ids FROM slurm_jobs"); got != "ids\n101 102 103 104 105 106 107 108\n" {
		t.Errorf("slurm_jobs ids: %s", got)
	}
}

// TestSlurmPipelineMismatch: a run made by other files (or another order)
// is not resumed by a different pipeline.
func TestSlurmPipelineMismatch(t *testing.T) {
	fakeSlurm(t)
	lake := filepath.Join(t.TempDir(), "lake")
	summary := splitSpec(pipeline(t)[1])[0]
	if code, _, stderr := rljob(t, nil, "run", summary, "--lake", lake, "--run", "r", "--log-format", "json"); code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	code, _, stderr := submit(t, lake, t.TempDir(), "--dry-run")
	if code != 2 || !strings.Contains(stderr, "score.sql would own steps 0..2, but step 0 of the run was made by another job file") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// A pipeline-wide --set goes to the files that read the variable (rljob
// run refuses a --set its job does not read); one that no file reads, or a
// file's own --set it does not read, is refused at submit (exit 2).
func TestSlurmSetsPerFile(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.sql", "CREATE TABLE x AS SELECT getvariable('lr') AS lr;\n")
	b := writeFile(t, dir, "b.sql", "CREATE TABLE y AS SELECT getvariable('step') AS s;\n")
	lake := filepath.Join(dir, "lake")
	sub := func(args ...string) (int, string, string) {
		return rljob(t, nil, append([]string{"slurm", "submit", a, b, "--lake", lake, "--run", "r", "--dir", filepath.Join(dir, "s"), "--dry-run"}, args...)...)
	}
	code, out, stderr := sub("--set", "lr=1e-3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	scripts := strings.Split(out, "#!/")
	var withSet []string
	for _, s := range scripts {
		if strings.Contains(s, "--set lr=1e-3") {
			withSet = append(withSet, s)
		}
	}
	if len(withSet) != 1 || !strings.Contains(withSet[0], "a.sql") {
		t.Errorf("--set lr=1e-3 should reach a.sql's script only:\n%s", out)
	}
	if code, _, stderr := sub("--set", "lrr=1"); code != 2 || !strings.Contains(stderr, "--set lrr=1: no file of the pipeline reads this variable") {
		t.Errorf("--set lrr=1: exit %d %s", code, stderr)
	}
	code, _, stderr = rljob(t, nil, "slurm", "submit", a, b+":--set=lr=1", "--lake", lake, "--run", "r", "--dir", filepath.Join(dir, "s"), "--dry-run")
	if code != 2 || !strings.Contains(stderr, "--set=lr=1: the file does not read this variable") {
		t.Errorf("b.sql:--set=lr=1: exit %d %s", code, stderr)
	}
}
