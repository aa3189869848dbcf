package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rsql "github.com/rljob/rljob/sql"
)

// TestCrashSafety runs a 3-step job in a child process (this test binary
// re-executed as rljob), SIGKILLs it at a random moment, reruns it to
// completion, and checks that the lake equals an uninterrupted run's:
//
//   - lake verify passes;
//   - the same commit units exist (each (table, step, call, shard) once,
//     with exactly one data file);
//   - every table has the same rows (timestamps aside), and the rewards
//     files, which hold no timestamp, are byte-identical.
//
// RLJOB_TEST_SLOW_COMMIT widens the windows inside a commit (files staged,
// rename pending) and between commits; each kill waits for a random number
// of committed units, then up to 70 ms, so kills land in both.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: 20+ child processes killed and rerun, ~1 minute; skipped under -short")
	}
	crashTrials(t, "testdata/toy.sql", 20, tableDump)
}

// TestCrashSafetyEpisodes is TestCrashSafety on a job whose rollouts are
// multi-turn episodes (a SQL environment, then GRPO on them): a kill
// mid-episode, or between the rollouts and turns commits, resumes to the
// rows and turns of an uninterrupted run.
func TestCrashSafetyEpisodes(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: child processes killed and rerun; skipped under -short")
	}
	crashTrials(t, "testdata/episodes.sql", 6, episodeDump)
}

// crashTrials runs jobFile's 3 steps uninterrupted, then in trials lakes
// with one or two SIGKILLs each and a rerun, and compares the lakes with
// dump (and units, lake verify and the rewards files' bytes).
func crashTrials(t *testing.T, jobFile string, trials int, dump func(*testing.T, string) string) {
	const steps = "3"
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	job, _ := filepath.Abs(jobFile)
	args := func(lake string) []string {
		return []string{"run", job, "--lake", lake, "--run", "c", "--steps", steps, "--until-step", steps, "--seed", "7", "--log-format", "json"}
	}
	child := func(lake string, slow bool) *exec.Cmd {
		cmd := exec.Command(self, args(lake)...)
		cmd.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1")
		if slow {
			cmd.Env = append(cmd.Env, "RLJOB_TEST_SLOW_COMMIT=30")
		}
		return cmd
	}

	// The reference: one uninterrupted run, timed with slow commits.
	ref := filepath.Join(t.TempDir(), "ref")
	t0 := time.Now()
	if out, err := child(ref, true).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	full := time.Since(t0)
	refUnits, refRows := units(t, ref), dump(t, ref)
	total := countUnits(ref)
	refRewards := rewardFiles(t, ref)

	var inside, between atomic.Int64
	// Trials run two at a time (t.Parallel, -parallel defaults to
	// GOMAXPROCS): the children mostly sleep in the widened commit windows.
	t.Run("trials", func(t *testing.T) {
		for i := 0; i < trials; i++ {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(20261124, uint64(i)))
				lake := filepath.Join(t.TempDir(), "lake")
				// One or two kills per trial: the second lands in a rerun
				// that is resuming a crashed step.
				kills := 1 + i%3/2
				for k := 0; k < kills; k++ {
					// Kill once the child has committed a random number of
					// units, plus up to 70 ms: the 30 ms windows after the
					// staged files are written and after the rename make
					// the kill land inside or between commits.
					have := countUnits(lake)
					debris := len(readDir(filepath.Join(lake, "_staging")))
					if have >= total {
						break
					}
					target := have + rng.IntN(total-have)
					cmd := child(lake, true)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					exited := make(chan struct{})
					go func() { _ = cmd.Wait(); close(exited) }()
					// Every other trial aims inside a commit: it also waits for
					// a staged unit to appear (the child then sleeps 30 ms
					// before its rename).
					aimInside := i%2 == 1
					ready := func() bool {
						if countUnits(lake) < target {
							return false
						}
						if !aimInside {
							return true
						}
						return len(readDir(filepath.Join(lake, "_staging"))) > debris
					}
					deadline := time.Now().Add(60 * time.Second)
				wait:
					for !ready() && time.Now().Before(deadline) {
						select {
						case <-exited:
							break wait
						case <-time.After(2 * time.Millisecond):
						}
					}
					if !aimInside {
						// Between commits: a random moment, moved past the
						// commit in flight, if any (on a loaded machine a
						// slow commit's 30 ms would take most moments).
						time.Sleep(time.Duration(rng.Int64N(int64(70 * time.Millisecond))))
						for end := time.Now().Add(200 * time.Millisecond); len(readDir(filepath.Join(lake, "_staging"))) > debris && time.Now().Before(end); {
							time.Sleep(time.Millisecond)
						}
					}
					_ = cmd.Process.Kill() // SIGKILL
					<-exited
					if len(readDir(filepath.Join(lake, "_staging"))) > debris {
						inside.Add(1)
					} else {
						between.Add(1)
					}
				}
				if out, err := child(lake, false).CombinedOutput(); err != nil {
					t.Fatalf("rerun: %v\n%s", err, out)
				}
				if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
					t.Fatalf("lake verify exit %d\n%s%s", code, out, stderr)
				}
				if got := units(t, lake); got != refUnits {
					t.Fatalf("units differ:\n%s\nwant\n%s", got, refUnits)
				}
				if got := dump(t, lake); got != refRows {
					t.Fatalf("table contents differ:\n%s\nwant\n%s", got, refRows)
				}
				if got := rewardFiles(t, lake); got != refRewards {
					t.Fatalf("rewards files not byte-identical:\n%s\nwant\n%s", got, refRewards)
				}
			})
		}
	})
	in, bt := inside.Load(), between.Load()
	t.Logf("%d trials, %d kills: %d left staging debris (inside a commit), %d did not; reference run %v",
		trials, in+bt, in, bt, full.Round(time.Millisecond))
	if in == 0 || bt == 0 {
		t.Errorf("kills did not cover both inside (%d) and between (%d) commits", in, bt)
	}
}

func readDir(dir string) []os.DirEntry {
	ents, _ := os.ReadDir(dir)
	return ents
}

// countUnits counts the committed units of run c.
func countUnits(lake string) int {
	m, _ := filepath.Glob(filepath.Join(lake, "*", "run=c", "step=*", "part-*", "_commit.json"))
	return len(m)
}

// units lists every commit unit folder (holding _commit.json) with its
// files, one per line, sorted.
func units(t *testing.T, lake string) string {
	t.Helper()
	var lines []string
	filepath.Walk(lake, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(lake, p)
		if fi.IsDir() && (rel == "_staging" || rel == "_locks") {
			return filepath.SkipDir
		}
		if fi.Name() != "_commit.json" {
			return nil
		}
		ents, _ := os.ReadDir(filepath.Dir(p))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		lines = append(lines, filepath.ToSlash(filepath.Dir(rel))+": "+strings.Join(names, " "))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tableDump is every table's rows without timestamp columns, as CSV.
func tableDump(t *testing.T, lake string) string {
	return dumpQueries(t, lake,
		"SELECT count(*) AS rollouts FROM rollouts",
		"SELECT * EXCLUDE (created_at) FROM rollouts ORDER BY ALL",
		"SELECT * FROM rewards ORDER BY ALL",
		"SELECT * EXCLUDE (created_at) FROM metrics ORDER BY ALL",
		"SELECT * EXCLUDE (started_at, finished_at) FROM steps ORDER BY ALL")
}

// episodeDump is tableDump of an episode job: the turns too (their
// latencies aside), the metrics without timings, and the checkpoints'
// existence.
func episodeDump(t *testing.T, lake string) string {
	return dumpQueries(t, lake,
		"SELECT count(*) AS rollouts, sum(num_turns) AS turns FROM rollouts",
		"SELECT * EXCLUDE (created_at) FROM rollouts ORDER BY ALL",
		"SELECT * EXCLUDE (created_at, latency_s) FROM turns ORDER BY ALL",
		"SELECT * FROM rewards ORDER BY ALL",
		"SELECT name, value FROM metrics WHERE name NOT LIKE 'timing%' AND name NOT LIKE 'perf/%' ORDER BY ALL",
		"SELECT * EXCLUDE (started_at, finished_at) FROM steps ORDER BY ALL")
}

// dumpQueries runs queries on lake and writes their results as CSV.
func dumpQueries(t *testing.T, lake string, queries ...string) string {
	t.Helper()
	ctx := context.Background()
	eng, err := rsql.Open(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var b strings.Builder
	for _, q := range queries {
		rr, err := eng.QueryArrow(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		err = writeResult(&b, "csv", rr)
		rr.Release()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return b.String()
}

// rewardFiles is the sha256 of every rewards file, by path.
func rewardFiles(t *testing.T, lake string) string {
	t.Helper()
	var lines []string
	for f, h := range snapshot(t, lake) {
		if strings.HasPrefix(f, "rewards/") && strings.HasSuffix(f, ".parquet") {
			lines = append(lines, f+" "+h)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
