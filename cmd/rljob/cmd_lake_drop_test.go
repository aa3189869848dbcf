package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
)

// TestDropStepCLI: a step killed half-way, resumed with a changed job file,
// is refused with an error naming the exact drop-step command; that command
// removes the step (saying what), refuses a complete step, a busy run and a
// missing --step with the lake unchanged, and the changed job then
// finishes the step.
func TestDropStepCLI(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	toy, err := os.ReadFile("testdata/toy.sql")
	if err != nil {
		t.Fatal(err)
	}
	job := writeFile(t, dir, "toy.sql", string(toy))
	mustChild(t, nil, "run", job, "--lake", lake, "--run", "x")
	// Step 1 killed after save and reward, before log_metrics.
	if out, err := child(t, []string{"RLJOB_TEST_KILL_AT=1:3"}, "run", job, "--lake", lake, "--run", "x"); err == nil {
		t.Fatalf("not killed:\n%s", tail(out, 1000))
	}
	writeFile(t, dir, "toy.sql", strings.Replace(string(toy), "'accuracy'", "'acc'", 1))
	code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--run", "x")
	cmd := "rljob lake drop-step --lake " + lake + " --run x --step 1"
	if code != 2 || !strings.Contains(stderr, "step 1 of run \"x\" was started by a job file") || !strings.Contains(stderr, cmd) {
		t.Fatalf("changed job file: exit %d, want 2 naming %q:\n%s", code, cmd, stderr)
	}

	before := snapshot(t, lake)
	held, err := jobs.AcquireRunnerLock(lake, "x", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"run busy", []string{"--run", "x", "--step", "1"}, 4, "shard runners"},
		{"complete step", []string{"--run", "x", "--step", "0"}, 2, "step is complete"},
		{"no step", []string{"--run", "x"}, 2, "needs --run R and --step S"},
		{"no such step", []string{"--run", "x", "--step", "9"}, 2, "nothing to drop"},
		{"bad run", []string{"--run", "a/b", "--step", "1"}, 2, `--run "a/b"`},
	} {
		if tc.name == "complete step" {
			held.Release()
		}
		code, out, stderr := rljob(t, nil, append([]string{"lake", "drop-step", "--lake", lake}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", tc.name, code, tc.code, tc.want, out, stderr)
		}
		if after := snapshot(t, lake); !reflect.DeepEqual(after, before) {
			t.Fatalf("%s changed the lake", tc.name)
		}
	}
	code, out, stderr := rljob(t, nil, strings.Fields(cmd)[1:]...)
	if code != 0 || !strings.Contains(out, "removed rollouts/run=x/step=1/part-1-0 (6 rows") ||
		!strings.Contains(out, "removed rewards/run=x/step=1/part-2-0") || !strings.Contains(out, "ok: dropped step 1 of run x") {
		t.Fatalf("drop-step: exit %d\n%s%s", code, out, stderr)
	}
	for p := range snapshot(t, lake) {
		if strings.Contains(p, "/step=1/") {
			t.Errorf("%s left after drop-step", p)
		}
	}
	mustChild(t, nil, "run", job, "--lake", lake, "--run", "x")
	if got := sqlOut(t, lake, "SELECT string_agg(DISTINCT name, ',' ORDER BY name) FROM metrics WHERE step = 1 AND name NOT LIKE 'timing%'"); !strings.Contains(got, "acc") || strings.Contains(got, "accuracy") {
		t.Errorf("step 1 metrics after redo: %s", got)
	}
	if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
		t.Fatalf("verify: %d\n%s%s", code, out, stderr)
	}
}
