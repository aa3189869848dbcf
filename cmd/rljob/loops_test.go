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
