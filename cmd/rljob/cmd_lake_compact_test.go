package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// TestLakeCompactAndRetentionCLI: lake compact writes segments and lake
// verify checks them; lake sql reads the same counts; gc --keep-checkpoints
// removes the unreferenced checkpoints and rejects a bad spec with exit 2.
func TestLakeCompactAndRetentionCLI(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	l, err := arrowio.OpenLake(lake)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.GenerateHistory(arrowio.HistoryOptions{Run: "a", Steps: 12, PerStep: 8, Prompts: 8}); err != nil {
		t.Fatal(err)
	}
	for step := int64(0); step < 12; step++ {
		s, err := l.Begin(arrowio.Unit{Table: arrowio.TableCheckpoints, Run: "a", Step: step, Call: 4}, map[string]any{"policy": "latest"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteFile("model.safetensors", func(w io.Writer) error { _, err := io.WriteString(w, "w"); return err }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	count := func() string {
		t.Helper()
		code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", "SELECT count(*), count(DISTINCT step) FROM rollouts")
		if code != 0 {
			t.Fatalf("sql: %d %s", code, stderr)
		}
		return out
	}
	before := count()
	// Busy: another compaction holds the lock: exit 4, nothing written.
	f, err := os.OpenFile(filepath.Join(lake, arrowio.LocksDir, rsql.CompactLockName), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, lake)
	code, out, stderr := rljob(t, nil, "lake", "compact", "--lake", lake)
	if code != 4 || !strings.Contains(stderr, "the lake's compaction is locked by another process") {
		t.Fatalf("busy compaction: exit %d, want 4\n%s%s", code, out, stderr)
	}
	if !reflect.DeepEqual(snapshot(t, lake), snap) {
		t.Fatal("a refused compaction changed the lake")
	}
	f.Close()
	code, out, stderr = rljob(t, nil, "lake", "compact", "--lake", lake)
	if code != 0 || !strings.Contains(out, "wrote _compacted/rollouts/a/0-9") || !strings.Contains(out, "wrote _compacted/_prompt_summary/a/0-9") || !strings.Contains(out, "ok: 7 segments") {
		t.Fatalf("lake compact: %d\n%s%s", code, out, stderr)
	}
	if after := count(); after != before {
		t.Fatalf("rollouts after compaction: %q, before %q", after, before)
	}
	if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 || !strings.Contains(out, "ok:") {
		t.Fatalf("verify: %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := rljob(t, nil, "lake", "gc", "--lake", lake, "--keep-checkpoints", "last=0"); code != 2 || !strings.Contains(stderr, "last >= 1") {
		t.Fatalf("gc --keep-checkpoints last=0: exit %d, %s", code, stderr)
	}
	if code, _, stderr := rljob(t, nil, "lake", "gc", "--lake", lake, "--keep-checkpoints", "last=2,last=3"); code != 2 || !strings.Contains(stderr, "last given twice") {
		t.Fatalf("gc --keep-checkpoints last=2,last=3: exit %d, %s", code, stderr)
	}
	code, out, stderr = rljob(t, nil, "lake", "gc", "--lake", lake, "--keep-checkpoints", "last=2,every=5")
	// kept: 0 (first, every 5), 5, 10 (every 5), 10 and 11 (last 2): 8 removed.
	if code != 0 || !strings.Contains(out, "ok: 8 checkpoints removed, 4 kept") {
		t.Fatalf("gc --keep-checkpoints: %d\n%s%s", code, out, stderr)
	}
	left, err := l.Units(arrowio.TableCheckpoints, "a")
	if err != nil || len(left) != 4 {
		t.Fatalf("%d checkpoints left (%v), want 4", len(left), err)
	}
	if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
		t.Fatalf("verify after gc: %d\n%s%s", code, out, stderr)
	}
}
