package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
)

var loopJob, _ = filepath.Abs("testdata/loop_grpo.sql")

// TestKillResumeInLoops: a job whose calls run in a FOR loop (from an
// included file) and a WHILE loop, SIGKILLed before statements of several
// iterations (call numbers: round r's rollout is 3r, its reward 3r+1; the
// WHILE's train calls 15 and 16; 19 is log_metrics, 20 the step marker),
// then rerun, gives the lake of an uninterrupted run: calls committed in the
// killed run are skipped by statement and iteration, the rest run.
func TestKillResumeInLoops(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: child runs of the arith example")
	}
	job, err := jobs.LoadJob(loopJob, nil)
	if err != nil {
		t.Fatal(err)
	}
	if job.Slots != 20 {
		t.Fatalf("loop_grpo.sql spans %d call numbers, want 20 (the boundaries below assume it)", job.Slots)
	}
	base := arithBase(t)
	killAndResume(t, base, loopJob, []int{3, 5, 7, 10, 15, 16, 19, 20})
	// The uninterrupted run: 3 rollout calls, 2 train calls per step, in order.
	lake := copyLake(t, base)
	mustChild(t, nil, "run", loopJob, "--lake", lake, "--run", "a", "--seed", "3", "--steps", "1")
	got := query(t, lake, "SELECT string_agg(call || ':' || stage, ' ' ORDER BY call) FROM calls WHERE run = 'a' AND step = 2")
	if want := "3:rollout 4:reward 6:rollout 7:reward 9:rollout 10:reward 15:train 16:train 19:log_metrics"; strings.TrimSpace(got) != want {
		t.Errorf("step 2's calls = %q, want %q", strings.TrimSpace(got), want)
	}
}

// The dry run's plan shows the loops with their bounds and where the
// included statements come from, and warns that a fresh lake has neither
// the prompts nor the checkpoint the job reads; a --set the job does not
// read is exit 2.
func TestDryRunPlanLoopsAndNeeds(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	code, out, stderr := rljob(t, nil, "run", loopJob, "--lake", lake, "--run", "fresh", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"loop  FOR round IN 1..3 DO (at most 3 iterations)",
		"loop_round.sql:4:1:",
		"loop  WHILE (SELECT count(*) FROM this_step_calls WHERE stage = 'train') ... (at most 3 iterations)",
		"end   END WHILE",
		`warning: this statement reads the prompts of run "fresh", but the lake has none for that run`,
		`warning: rollout reads policy := 'latest', but run "fresh" has no checkpoint before step 0`,
		`loop_grpo.sql:16:3: warning: train reads policy := 'latest'`,
		"ok: 12 statements, 4 stage calls checked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	code, _, stderr = rljob(t, nil, "run", loopJob, "--lake", lake, "--run", "fresh", "--dry-run", "--set", "rounds=4")
	if code != 2 || !strings.Contains(stderr, `--set rounds: no statement of the job reads variable "rounds"`) || !strings.Contains(stderr, "the job reads round") {
		t.Errorf("--set rounds=4: exit %d\n%s", code, stderr)
	}
}
