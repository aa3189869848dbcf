package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rljob/rljob/jobs"
	rsql "github.com/rljob/rljob/sql"
)

// The job-semantics tests run the arith example's job files in child
// processes (this test binary acting as rljob) and compare lakes: every
// table's rows (timestamps and timings aside) and every checkpoint file,
// byte for byte.

var arith, _ = filepath.Abs("../../examples/arith")

// child runs rljob in a child process with extra environment; it returns
// the combined output and the exit error.
func child(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, append(args, "--log-format", "json")...)
	cmd.Env = append(append(os.Environ(), "RLJOB_TEST_MAIN=1"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustChild(t *testing.T, env []string, args ...string) {
	t.Helper()
	if out, err := child(t, env, args...); err != nil {
		t.Fatalf("rljob %s: %v\n%s", strings.Join(args, " "), err, tail(out, 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// arithBase makes a lake with prepare.sql (step 0) and a 3-epoch sft.sql
// (step 1) of run a.
func arithBase(t *testing.T) string {
	t.Helper()
	lake := filepath.Join(t.TempDir(), "lake")
	mustChild(t, nil, "run", arith+"/prepare.sql", "--lake", lake, "--run", "a", "--seed", "3")
	mustChild(t, nil, "run", arith+"/sft.sql", "--lake", lake, "--run", "a", "--seed", "3", "--set", "sft_epochs=3")
	return lake
}

// copyLake copies a lake folder (its committed content) to a new folder.
func copyLake(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "lake")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// lakeContent is a lake's rows and checkpoint bytes, for comparison:
// rollouts, rewards, metrics and calls row by row (no timestamps, no
// timing_s/ or perf/ metrics), which steps are complete, and the sha256 of
// every checkpoint file but the manifest.
func lakeContent(t *testing.T, lake string) map[string]string {
	t.Helper()
	ctx := context.Background()
	eng, err := rsql.Open(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	out := map[string]string{}
	for name, q := range map[string]string{
		"rollouts": "SELECT * EXCLUDE (created_at) FROM rollouts ORDER BY ALL",
		"rewards":  "SELECT * FROM rewards ORDER BY ALL",
		"metrics":  "SELECT * EXCLUDE (created_at) FROM metrics WHERE name NOT LIKE 'timing_s/%' AND name NOT LIKE 'perf/%' AND name NOT LIKE '%tokens_per_s%' ORDER BY ALL",
		"calls":    "SELECT step, call, stage, status, args, rows FROM calls WHERE shard = 0 ORDER BY ALL",
		"steps":    "SELECT DISTINCT step FROM steps ORDER BY ALL",
	} {
		rr, err := eng.QueryArrow(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var b strings.Builder
		err = writeResult(&b, "csv", rr)
		rr.Release()
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b.String()
	}
	var cks []string
	root := filepath.Join(lake, "checkpoints")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "_commit.json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, p)
		cks = append(cks, rel+" "+hex.EncodeToString(h[:8]))
		return nil
	})
	sort.Strings(cks)
	out["checkpoints"] = strings.Join(cks, "\n")
	return out
}

func sameContent(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: table %s differs from the reference:\n%s\nwant\n%s", what, k, tail(got[k], 1500), tail(w, 1500))
		}
	}
}

// statements counts the statements of a job file.
func statements(t *testing.T, file string) int {
	t.Helper()
	job, err := jobs.LoadJob(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(job.Stmts)
}

// killAndResume runs job for 2 steps on a copy of base once per statement
// boundary of its first step, SIGKILLed there (RLJOB_TEST_KILL_AT, a test
// hook), then reruns it and checks the lake equals the uninterrupted one.
func killAndResume(t *testing.T, base, job string, boundaries []int, extra ...string) {
	args := func(lake string) []string {
		return append([]string{"run", job, "--lake", lake, "--run", "a", "--seed", "3", "--steps", "2", "--until-step", "4"}, extra...)
	}
	ref := copyLake(t, base)
	mustChild(t, nil, args(ref)...)
	want := lakeContent(t, ref)
	if !strings.Contains(want["steps"], "3") {
		t.Fatalf("reference run did not complete step 3: %s", want["steps"])
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for _, i := range boundaries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lake := copyLake(t, base)
			if out, err := child(t, []string{fmt.Sprintf("RLJOB_TEST_KILL_AT=2:%d", i)}, args(lake)...); err == nil {
				t.Errorf("boundary %d: the run was not killed:\n%s", i, tail(out, 1000))
				return
			}
			if out, err := child(t, nil, args(lake)...); err != nil {
				t.Errorf("boundary %d: rerun: %v\n%s", i, err, tail(out, 2000))
				return
			}
			if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
				t.Errorf("boundary %d: lake verify exit %d\n%s%s", i, code, out, stderr)
			}
			sameContent(t, fmt.Sprintf("killed before statement %d of step 2, rerun", i), want, lakeContent(t, lake))
		}()
	}
	wg.Wait()
}

// TestKillAtEveryStatementBoundary: grpo.sql killed before each of its
// statements (and before the step marker), then rerun, gives the rows and
// checkpoint bytes of an uninterrupted run — the rerun's SQL sees the same
// snapshot, so it chooses the same batch.
func TestKillAtEveryStatementBoundary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: about 20 child runs of the arith example")
	}
	base := arithBase(t)
	job := arith + "/grpo.sql"
	var all []int
	for i := 0; i <= statements(t, job); i++ {
		all = append(all, i)
	}
	killAndResume(t, base, job, all)
}

// TestReLIFTOneJobFile: relift.sql runs train then sft in one step (two
// checkpoints in the step, when := deciding sft); killed between them, or
// after sft, the rerun reproduces an uninterrupted run.
func TestReLIFTOneJobFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: child runs of the arith example")
	}
	base := arithBase(t)
	job := arith + "/relift.sql"
	killAndResume(t, base, job, []int{6, 7, 8})
	// Both checkpoints of a step exist, and the next step sampled from sft's.
	lake := copyLake(t, base)
	mustChild(t, nil, "run", job, "--lake", lake, "--run", "a", "--seed", "3", "--steps", "2")
	c := lakeContent(t, lake)
	// (train's is light: its parent is its own previous checkpoint; docs/checkpoints.md)
	for _, p := range []string{"run=a/step=2/part-5-0/trainer_state.json", "run=a/step=2/part-7-0/model.safetensors"} {
		if !strings.Contains(c["checkpoints"], p) {
			t.Errorf("no checkpoint %s:\n%s", p, c["checkpoints"])
		}
	}
	if !strings.Contains(c["calls"], "2,7,sft,done") {
		t.Errorf("step 2's sft did not run (calls):\n%s", c["calls"])
	}
}

// query runs one SQL query over the lake through rljob sql and returns the
// csv rows without header.
func query(t *testing.T, lake, q string) string {
	t.Helper()
	code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", q)
	if code != 0 {
		t.Fatalf("%s: exit %d %s", q, code, stderr)
	}
	_, rows, _ := strings.Cut(out, "\n")
	return rows
}

// TestShardedGRPOEqualsUnsharded: grpo.sql with 2 shards (two processes at
// once) and with 3 shards chooses the same prompts and writes the same
// rollouts, rewards, metrics and checkpoint bytes as an unsharded run.
func TestShardedGRPOEqualsUnsharded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: child runs of the arith example")
	}
	base := arithBase(t)
	job := arith + "/grpo.sql"
	args := func(lake string) []string {
		return []string{"run", job, "--lake", lake, "--run", "a", "--seed", "3", "--steps", "2"}
	}
	ref := copyLake(t, base)
	mustChild(t, nil, args(ref)...)
	want := lakeContent(t, ref)
	delete(want, "calls") // a sharded run has a record per shard; shard 0's differ in rows
	for _, n := range []int{2, 3} {
		lake := copyLake(t, base)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := child(t, nil, append(args(lake), "--shard", fmt.Sprintf("%d/%d", i, n), "--wait-timeout", "5m")...); err != nil {
					t.Errorf("shard %d/%d: %v\n%s", i, n, err, tail(out, 2000))
				}
			}()
		}
		wg.Wait()
		sameContent(t, fmt.Sprintf("%d shards", n), want, lakeContent(t, lake))
		if files := query(t, lake, "SELECT count(DISTINCT filename) FROM read_parquet('"+lake+"/rollouts/run=a/step=2/*/*.parquet', filename = true)"); files != fmt.Sprintf("%d\n", n) {
			t.Errorf("%d shards wrote %s rollouts files in step 2", n, files)
		}
	}
}

// TestJobLanguage: --set reaches a stage argument through an expression,
// when := false skips a call and records it, a second reward with the same
// verifier is refused, and a job run from another directory finds the
// files its job file names relative to itself.
func TestJobLanguage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: child runs of the arith example")
	}
	base := arithBase(t)
	lake := copyLake(t, base)
	mustChild(t, nil, "run", arith+"/grpo.sql", "--lake", lake, "--run", "a", "--seed", "3", "--set", "lr=0.00125")
	if got := query(t, lake, "SELECT json_extract(args, '$.lr') FROM calls WHERE stage = 'train'"); got != "0.00125\n" {
		t.Errorf("train's evaluated lr = %q, want 0.00125", got)
	}

	dir := t.TempDir()
	job := writeFile(t, dir, "when.sql", `CALL log_metrics(query := 'SELECT ''x'' AS name, 1.0 AS value', when := getvariable('step') % 2 = 0);
CREATE OR REPLACE TABLE old AS SELECT * FROM rollouts WHERE step = 2;
CALL reward(verifier := 'exact', rollouts := 'old', when := getvariable('dup') = 1);
CALL reward(verifier := 'exact', rollouts := old, when := getvariable('dup') = 1);
`)
	mustChild(t, nil, "run", job, "--lake", lake, "--run", "a", "--set", "dup=0")
	if got := query(t, lake, "SELECT step, call, stage, status FROM calls WHERE step = 3 ORDER BY call"); got != "3,0,log_metrics,skipped\n3,2,reward,skipped\n3,3,reward,skipped\n" {
		t.Errorf("step 3 calls:\n%s", got)
	}
	out, err := child(t, nil, "run", job, "--lake", lake, "--run", "a", "--set", "dup=1")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(out, "already scored") {
		t.Errorf("a second reward of the same rollouts with the same verifier: %v\n%s", err, tail(out, 1500))
	}
	if got := query(t, lake, "SELECT count(*) FROM rewards WHERE step = 4"); got != "256\n" {
		t.Errorf("rewards committed in step 4: %s, want 256 (the first reward only)", got)
	}

	// prepare.sql names config.json relative to itself; run from elsewhere.
	other := filepath.Join(t.TempDir(), "lake")
	self, _ := os.Executable()
	cmd := exec.Command(self, "run", filepath.Join(arith, "prepare.sql"), "--lake", other, "--run", "a")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("prepare.sql from another directory: %v\n%s", err, tail(string(out), 1500))
	}
}

// TestCronOverlap: cron fires `rljob run JOB --steps 1` while the previous
// invocation still runs. The second exits 4 at once (the run's own flock,
// no flock(1) wrapper needed) and does nothing; each invocation that gets
// the lock makes exactly one step of progress.
func TestCronOverlap(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	job, _ := filepath.Abs("testdata/toy.sql")
	args := []string{"run", job, "--lake", lake, "--run", "c", "--steps", "1"}
	self, _ := os.Executable()
	slow := exec.Command(self, append(args, "--log-format", "json")...)
	slow.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1", "RLJOB_TEST_SLOW_COMMIT=400")
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the first invocation holds the lock and has started the step.
	for i := 0; i < 200; i++ {
		if m, _ := filepath.Glob(filepath.Join(lake, "_staging", "*")); len(m) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := child(t, nil, args...)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 || !strings.Contains(out, `run "c" is locked by another runner`) {
		t.Fatalf("overlapping invocation: %v\n%s", err, tail(out, 1000))
	}
	if err := slow.Wait(); err != nil {
		t.Fatalf("first invocation: %v", err)
	}
	mustChild(t, nil, args...)
	if got := query(t, lake, "SELECT count(*), max(step) FROM steps"); got != "2,1\n" {
		t.Errorf("after two invocations that got the lock and one that did not: steps %q, want 2 steps (0 and 1)", got)
	}
}
