package sql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rljob/rljob/arrowio"
)

// compactTables are the tables a generated history holds.
var compactTables = []string{"prompts", "rollouts", "rewards", "metrics", "steps", "calls"}

// tableDigest is every row of every table as the engine's views show them
// (sorted, as text), or, with plain, as DuckDB's own Hive glob over the
// table folder shows them.
func tableDigest(t *testing.T, root string, snap *Snapshot, plain bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	e, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if snap != nil {
		e.SetSnapshot(snap)
		if err := e.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.SetVariable(ctx, "run", snap.Run); err != nil { // as the job runner does
			t.Fatal(err)
		}
	}
	out := map[string]string{}
	for _, table := range compactTables {
		src := QuoteIdent(table)
		if plain {
			src = "read_parquet(" + QuoteString(filepath.ToSlash(filepath.Join(root, table))+"/**/*.parquet") + ", hive_partitioning = true, union_by_name = true)"
		}
		q := "SELECT count(*)::VARCHAR || ' ' || coalesce(md5(string_agg(x, '|' ORDER BY x)), '') FROM (SELECT CAST(t AS VARCHAR) AS x FROM " + src + " t)"
		var d string
		if err := e.Conn().QueryRowContext(ctx, q).Scan(&d); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = d
	}
	// prompt_stats reads the prompt summaries under a snapshot once they
	// exist: the same numbers (the EMA to 1e-12) as from scored alone.
	q := `SELECT count(*)::VARCHAR || ' ' || coalesce(md5(string_agg(x, '|' ORDER BY x)), '') FROM (
	  SELECT concat_ws(',', prompt_id, attempts, correct, last_step, round(pass_rate, 12), round(ema_pass_rate, 12)) AS x FROM prompt_stats)`
	var d string
	if err := e.Conn().QueryRowContext(ctx, q).Scan(&d); err != nil {
		t.Fatalf("prompt_stats: %v", err)
	}
	out["prompt_stats"] = d
	return out
}

func sameDigest(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: table %s: %s, want %s", what, k, got[k], w)
		}
	}
}

func verifyOK(t *testing.T, l *arrowio.Lake) {
	t.Helper()
	r, err := VerifyLake(context.Background(), l.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) > 0 {
		t.Fatalf("verify: %v", r.Problems)
	}
}

func allComplete(string, int64) bool { return true }

// TestCompactKeepsEveryRowOnce: after compaction (and a second, merging
// compaction, and gc of the superseded segments) the views — without a
// snapshot and under one — and DuckDB's own glob over the table folders
// show the same rows as before, each once, and verify passes.
func TestCompactKeepsEveryRowOnce(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "lake")
	l, err := arrowio.OpenLake(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"a", "b"} {
		if err := l.GenerateHistory(arrowio.HistoryOptions{Run: run, Steps: 25, PerStep: 16, Prompts: 8}); err != nil {
			t.Fatal(err)
		}
	}
	snaps := []*Snapshot{nil, {Run: "a", Step: 25, Complete: allComplete}, {Run: "a", Step: 15, Complete: allComplete}, {Run: "b", Step: 3, Complete: allComplete}}
	digests := func() []map[string]string {
		var out []map[string]string
		for _, s := range snaps {
			out = append(out, tableDigest(t, root, s, false))
		}
		return append(out, tableDigest(t, root, nil, true))
	}
	before := digests()
	check := func(what string) {
		t.Helper()
		for i, d := range digests() {
			sameDigest(t, fmt.Sprintf("%s, view %d", what, i), d, before[i])
		}
		verifyOK(t, l)
	}
	segs, err := CompactLake(ctx, root, CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 2 ranges of 10 steps per run for each of 5 tables and the prompt
	// summaries, 1 for prompts (rows at step 0 only).
	if len(segs) != 2*2*6+2*1 {
		t.Fatalf("%d segments: %v", len(segs), segs)
	}
	check("after compaction")

	// More history: a 100-step segment supersedes the 10-step ones.
	for _, run := range []string{"a", "b"} {
		if err := l.GenerateHistory(arrowio.HistoryOptions{Run: run, FirstStep: 25, Steps: 80, PerStep: 16}); err != nil {
			t.Fatal(err)
		}
	}
	before = digests()
	if _, err := CompactLake(ctx, root, CompactOptions{Run: "a"}); err != nil {
		t.Fatal(err)
	}
	check("after the merging compaction")
	removed, err := l.GCSegments(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2*6+1 {
		t.Fatalf("gc removed %d superseded segments: %v", len(removed), removed)
	}
	check("after gc of superseded segments")
	e, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var n int64
	if err := e.Conn().QueryRowContext(ctx, "SELECT count(*) FROM rollouts WHERE run = 'a' AND step BETWEEN 0 AND 99").Scan(&n); err != nil || n != 100*16 {
		t.Fatalf("run a steps 0-99: %d rollouts (%v), want %d", n, err, 100*16)
	}
}

// TestVerifyChecksSegments: verify names a segment that no longer matches
// its steps: a unit added to a compacted step, a loose file there, a
// source unit removed, a corrupted data file.
func TestVerifyChecksSegments(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, want string
		damage     func(t *testing.T, l *arrowio.Lake)
	}{
		{"unit added to a compacted step", "not in it", func(t *testing.T, l *arrowio.Lake) {
			if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "other", Steps: 1, PerStep: 8}); err != nil {
				t.Fatal(err)
			}
			src := l.Path("rewards/run=other/step=0/part-2-0")
			if err := os.Rename(src, l.Path("rewards/run=a/step=3/part-7-0")); err != nil {
				t.Fatal(err)
			}
		}},
		{"loose file in a compacted step", "outside committed units", func(t *testing.T, l *arrowio.Lake) {
			if err := os.WriteFile(l.Path("metrics/run=a/step=4/x.parquet"), []byte("PAR1"), 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"source unit removed", "no longer committed", func(t *testing.T, l *arrowio.Lake) {
			if err := os.RemoveAll(l.Path("rollouts/run=a/step=5/part-1-0")); err != nil {
				t.Fatal(err)
			}
		}},
		{"prompt summary rewritten", "differ from the rows", func(t *testing.T, l *arrowio.Lake) {
			// A consistent segment (manifest matches the file) whose rows
			// are not the summary of its steps: only recomputing finds it.
			rewriteSegment(t, l, arrowio.Segment{Table: arrowio.SummaryTable, Run: "a", First: 0, Last: 9},
				"SELECT * REPLACE (attempts + 1 AS attempts) FROM read_parquet(%s)")
		}},
		{"segment data corrupted", "corrupted", func(t *testing.T, l *arrowio.Lake) {
			p := l.Path("_compacted/rewards/a/0-9/" + arrowio.SegmentFile)
			buf, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			buf[len(buf)/2] ^= 1
			if err := os.WriteFile(p, buf, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "lake")
			l, err := arrowio.OpenLake(root)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "a", Steps: 10, PerStep: 8, Prompts: 8}); err != nil {
				t.Fatal(err)
			}
			if _, err := CompactLake(ctx, root, CompactOptions{}); err != nil {
				t.Fatal(err)
			}
			verifyOK(t, l)
			tc.damage(t, l)
			r, err := VerifyLake(ctx, l.Root)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range r.Problems {
				found = found || strings.Contains(p.Msg, tc.want)
			}
			if !found {
				t.Fatalf("verify problems %v: none says %q", r.Problems, tc.want)
			}
		})
	}
}

// TestCompactChild is the child process of TestCompactKill9: it compacts
// the lake RLJOB_TEST_COMPACT_LAKE and SIGKILLs itself at the hook call
// numbered RLJOB_TEST_COMPACT_KILL (or is killed by the parent's timer).
func TestCompactChild(t *testing.T) {
	root := os.Getenv("RLJOB_TEST_COMPACT_LAKE")
	if root == "" {
		t.Skip("child process of TestCompactKill9")
	}
	killAt, _ := strconv.Atoi(os.Getenv("RLJOB_TEST_COMPACT_KILL"))
	calls := 0
	hook := func(string) {
		calls++
		if calls == killAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	if _, err := CompactLake(context.Background(), root, CompactOptions{Hook: hook}); err != nil {
		t.Fatal(err)
	}
}

// TestCompactKill9 SIGKILLs compactions at random points (20 trials, at a
// hook point inside a segment's write or after a random delay): afterwards
// every view and DuckDB's own glob show the rows of the uncompacted lake,
// verify passes, and a second compaction finishes the job with the same
// rows.
func TestCompactKill9(t *testing.T) {
	trials := 20
	if testing.Short() {
		trials = 4
	}
	base := filepath.Join(t.TempDir(), "base")
	l, err := arrowio.OpenLake(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "a", Steps: 30, PerStep: 8, Prompts: 8}); err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{Run: "a", Step: 30, Complete: allComplete}
	want, wantPlain := tableDigest(t, base, snap, false), tableDigest(t, base, nil, true)
	rng := rand.New(rand.NewPCG(9, 9))
	killed := 0
	for trial := range trials {
		root := filepath.Join(t.TempDir(), "lake")
		if err := exec.Command("cp", "-a", base, root).Run(); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactChild$")
		// 5 tables x 3 segments x 3 hook points: kill at one of them, or by timer.
		kill := 1 + rng.IntN(45)
		if trial%4 == 3 {
			kill = 0
		}
		cmd.Env = append(os.Environ(), "RLJOB_TEST_COMPACT_LAKE="+root, "RLJOB_TEST_COMPACT_KILL="+strconv.Itoa(kill))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if kill == 0 {
			time.AfterFunc(time.Duration(50+rng.IntN(400))*time.Millisecond, func() { _ = cmd.Process.Kill() })
		}
		if err := cmd.Wait(); err != nil {
			killed++
		}
		lake := &arrowio.Lake{Root: root}
		sameDigest(t, fmt.Sprintf("trial %d (kill %d), after the kill", trial, kill), tableDigest(t, root, snap, false), want)
		sameDigest(t, fmt.Sprintf("trial %d, DuckDB glob", trial), tableDigest(t, root, nil, true), wantPlain)
		verifyOK(t, lake)
		if _, err := CompactLake(context.Background(), root, CompactOptions{}); err != nil {
			t.Fatalf("trial %d: compaction after the kill: %v", trial, err)
		}
		sameDigest(t, fmt.Sprintf("trial %d, compacted again", trial), tableDigest(t, root, snap, false), want)
		verifyOK(t, lake)
		segs, err := lake.Segments("rollouts")
		if err != nil || len(segs) != 3 {
			t.Fatalf("trial %d: %d rollouts segments after the second compaction (%v), want 3", trial, len(segs), err)
		}
	}
	if killed < trials/2 {
		t.Fatalf("only %d of %d compactions were killed", killed, trials)
	}
}

// rewriteSegment replaces segment seg by a committed one whose rows are
// query (with %s the old data file) applied to the old ones.
func rewriteSegment(t *testing.T, l *arrowio.Lake, seg arrowio.Segment, query string) {
	t.Helper()
	ctx := context.Background()
	e, err := Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	old := filepath.Join(t.TempDir(), "old.parquet")
	if err := os.Rename(l.Path(seg.Dir()+"/"+arrowio.SegmentFile), old); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(l.Path(seg.Dir())); err != nil {
		t.Fatal(err)
	}
	st, err := l.BeginSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf(query, QuoteString(filepath.ToSlash(old)))
	if err := e.Exec(ctx, "COPY ("+q+") TO "+QuoteString(filepath.Join(st.Path(), arrowio.SegmentFile))+" (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(nil); err != nil {
		t.Fatal(err)
	}
}

// TestListCacheFollowsARun: the listing cache of a reader whose snapshot
// moves from step to step (the job runner) gives the files an uncached
// listing gives, while steps are added and compacted under it.
func TestListCacheFollowsARun(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "lake")
	l, err := arrowio.OpenLake(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "a", Steps: 5, PerStep: 8, Prompts: 8}); err != nil {
		t.Fatal(err)
	}
	if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "b", Steps: 3, PerStep: 8, Prompts: 8}); err != nil {
		t.Fatal(err)
	}
	c := arrowio.NewListCache("a", 0)
	for step := int64(1); step <= 40; step++ {
		if step > 5 { // the run writes step-1 before its snapshot moves to step
			if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "a", FirstStep: step - 1, Steps: 1, PerStep: 8}); err != nil {
				t.Fatal(err)
			}
		}
		if step == 12 || step == 31 {
			if _, err := CompactLake(ctx, root, CompactOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance("a", step)
		use := func(s *arrowio.SegmentManifest) bool { return s.Run != "a" || s.Last < step }
		for _, table := range []string{arrowio.TableRollouts, arrowio.TableSteps} {
			want, wantSegs, err := l.ListTable(table, use, false)
			if err != nil {
				t.Fatal(err)
			}
			got, gotSegs, err := l.ListTableCached(table, use, false, c)
			if err != nil {
				t.Fatal(err)
			}
			keep := func(fs []arrowio.DataFile) []string {
				var out []string
				for _, f := range fs {
					if f.Run != "a" || f.Step < step {
						out = append(out, f.Path)
					}
				}
				sort.Strings(out)
				return out
			}
			if w, g := keep(want), keep(got); strings.Join(w, "\n") != strings.Join(g, "\n") {
				t.Fatalf("step %d, %s: cached listing\n%s\nwant\n%s", step, table, strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
			if len(wantSegs) != len(gotSegs) {
				t.Fatalf("step %d, %s: %d segments cached, %d not", step, table, len(gotSegs), len(wantSegs))
			}
		}
	}
}
