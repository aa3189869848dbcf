package jobs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// lakeRows is every row of the run's data tables as the lake views show
// them, timestamps left out, in a stable order.
func lakeRows(t *testing.T, root string) map[string]string {
	t.Helper()
	ctx := context.Background()
	e, err := rsql.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out := map[string]string{}
	for table, cols := range map[string]string{
		"rollouts": "* EXCLUDE (created_at)", "rewards": "*", "metrics": "* EXCLUDE (created_at)",
		"calls": "*", "steps": "run, step, shard, num_shards, job_sha256",
	} {
		var d string
		q := "SELECT count(*)::VARCHAR || ' ' || coalesce(md5(string_agg(x, '|' ORDER BY x)), '') FROM (SELECT CAST(t AS VARCHAR) AS x FROM (SELECT " + cols + " FROM " + table + ") t)"
		if err := e.Conn().QueryRowContext(ctx, q).Scan(&d); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = d
	}
	return out
}

// TestMaintenanceDuringRun loops compaction, gc --older-than 0s (staging
// and superseded segments) and verify while a 25-step run goes on: the run
// finishes, verify passes throughout and after, and every table equals an
// undisturbed run's.
func TestMaintenanceDuringRun(t *testing.T) {
	steps := 25
	if testing.Short() {
		steps = 12
	}
	ctx := context.Background()
	job := writeJob(t, toyJob)
	quiet := filepath.Join(t.TempDir(), "quiet")
	o := runOpts(job, quiet)
	o.Steps = steps
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	want := lakeRows(t, quiet)

	busy := filepath.Join(t.TempDir(), "busy")
	l, err := arrowio.OpenLake(busy)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var loops int
	var maintErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := rsql.CompactLake(ctx, busy, rsql.CompactOptions{}); err != nil {
				maintErr = err
				return
			}
			if _, err := l.GC(0); err != nil {
				maintErr = err
				return
			}
			if _, err := l.GCSegments(0); err != nil {
				maintErr = err
				return
			}
			r, err := l.VerifyReport()
			if err != nil || len(r.Problems) > 0 {
				t.Errorf("verify during the run: %v %v", r, err)
				return
			}
			loops++
			time.Sleep(10 * time.Millisecond)
		}
	}()
	o = runOpts(job, busy)
	o.Steps = steps
	_, runErr := Run(ctx, o)
	close(stop)
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	if maintErr != nil {
		t.Fatal(maintErr)
	}
	if _, err := rsql.CompactLake(ctx, busy, rsql.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, problems, err := l.Verify(); err != nil || len(problems) > 0 {
		t.Fatalf("verify after the run: %v %v", problems, err)
	}
	segs, err := l.Segments("rollouts")
	if err != nil || len(segs) < steps/10 {
		t.Fatalf("%d rollouts segments (%v), want >= %d", len(segs), err, steps/10)
	}
	got := lakeRows(t, busy)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("table %s: %s after maintenance, %s undisturbed", k, got[k], w)
		}
	}
	t.Logf("%d maintenance loops during the run", loops)
}

// TestCompactKilledChild is the child of TestRunAfterKilledCompaction: it
// compacts RLJOB_TEST_COMPACT_LAKE and SIGKILLs itself at hook call
// RLJOB_TEST_COMPACT_KILL.
func TestCompactKilledChild(t *testing.T) {
	root := os.Getenv("RLJOB_TEST_COMPACT_LAKE")
	if root == "" {
		t.Skip("child process of TestRunAfterKilledCompaction")
	}
	killAt, _ := strconv.Atoi(os.Getenv("RLJOB_TEST_COMPACT_KILL"))
	calls := 0
	hook := func(string) {
		if calls++; calls == killAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	if _, err := rsql.CompactLake(context.Background(), root, rsql.CompactOptions{Hook: hook}); err != nil {
		t.Fatal(err)
	}
}

// TestRunAfterKilledCompaction: a compaction SIGKILLed at points inside its
// segment writes leaves a lake that verifies and a run that resumes, and
// the finished run equals an undisturbed one.
func TestRunAfterKilledCompaction(t *testing.T) {
	ctx := context.Background()
	job := writeJob(t, toyJob)
	quiet := filepath.Join(t.TempDir(), "quiet")
	o := runOpts(job, quiet)
	o.Steps = 14
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	want := lakeRows(t, quiet)
	kills := []int{1, 2, 3, 5, 8, 13}
	if testing.Short() {
		kills = []int{2, 8}
	}
	for _, kill := range kills {
		root := filepath.Join(t.TempDir(), "lake")
		o := runOpts(job, root)
		o.Steps = 11
		if _, err := Run(ctx, o); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactKilledChild$")
		cmd.Env = append(os.Environ(), "RLJOB_TEST_COMPACT_LAKE="+root, "RLJOB_TEST_COMPACT_KILL="+strconv.Itoa(kill))
		if err := cmd.Run(); err == nil {
			t.Fatalf("kill at hook %d: the compaction was not killed", kill)
		}
		l := &arrowio.Lake{Root: root}
		if _, problems, err := l.Verify(); err != nil || len(problems) > 0 {
			t.Fatalf("kill at hook %d: verify: %v %v", kill, problems, err)
		}
		o.Steps = 3
		if res, err := Run(ctx, o); err != nil || res.FirstStep != 11 {
			t.Fatalf("kill at hook %d: resume: %+v %v", kill, res, err)
		}
		got := lakeRows(t, root)
		for k, w := range want {
			if got[k] != w {
				t.Errorf("kill at hook %d: table %s: %s, undisturbed %s", kill, k, got[k], w)
			}
		}
	}
}
