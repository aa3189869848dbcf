package arrowio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lakeTree maps each file of the lake outside _staging and _locks to its
// sha256: what a reader can see.
func lakeTree(t *testing.T, l *Lake) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(l.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.Root, p)
		if d.IsDir() && (rel == StagingDir || rel == LocksDir) {
			return fs.SkipDir
		}
		if !d.IsDir() {
			sum, err := fileSHA256(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = sum
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutStep is tree less the step folders of (run, step).
func withoutStep(tree map[string]string, run string, step string) map[string]string {
	out := map[string]string{}
	for k, v := range tree {
		if !strings.Contains(k, "/run="+run+"/step="+step+"/") {
			out[k] = v
		}
	}
	return out
}

// droppableLake has runs a (steps 0, 1 complete; step 2 written but its
// marker missing: a half-failed step) and b (steps 0..1 complete).
func droppableLake(t *testing.T) *Lake {
	t.Helper()
	l := newLake(t)
	for _, run := range []string{"a", "b"} {
		n := int64(2)
		if run == "a" {
			n = 3
		}
		if err := l.GenerateHistory(HistoryOptions{Run: run, Steps: n, PerStep: 8, Prompts: 8, JobSHA256: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.RemoveUnit(Unit{Table: TableSteps, Run: "a", Step: 2}); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDropStep: drop-step removes every unit of an unfinished step and
// nothing else; a complete step, a step with nothing to drop and a bad run
// name are refused with the lake unchanged.
func TestDropStep(t *testing.T) {
	l := droppableLake(t)
	before := lakeTree(t, l)
	for _, tc := range []struct {
		name, run string
		step      int64
		want      error
		msg       string
	}{
		{"complete step", "a", 1, ErrStepComplete, "only an unfinished step"},
		{"no such step", "a", 7, ErrNothingToDrop, "no table has a folder run=a/step=7"},
		{"no such run", "zz", 0, ErrNothingToDrop, ""},
		{"bad run", "../a", 2, nil, "run"},
		{"negative step", "a", -1, nil, "must be >= 0"},
	} {
		_, err := l.DropStep(tc.run, tc.step)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err %v, want %v %q", tc.name, err, tc.want, tc.msg)
		}
		if after := lakeTree(t, l); !reflect.DeepEqual(after, before) {
			t.Fatalf("%s changed the lake", tc.name)
		}
	}
	rep, err := l.DropStep("a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"calls/run=a/step=2", "metrics/run=a/step=2", "rewards/run=a/step=2", "rollouts/run=a/step=2"}; !reflect.DeepEqual(rep.Folders, want) {
		t.Fatalf("folders %v, want %v", rep.Folders, want)
	}
	var rows int64
	for _, u := range rep.Units {
		rows += u.Rows
	}
	if len(rep.Units) != 6 || rows != 8+8+4+3 { // rollouts, rewards, metrics, 3 call records
		t.Errorf("dropped %d units, %d rows: %+v", len(rep.Units), rows, rep.Units)
	}
	if got, want := lakeTree(t, l), withoutStep(before, "a", "2"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after drop: %d files, want %d", len(got), len(want))
	}
	if names, _ := readNames(filepath.Join(l.Root, StagingDir)); len(names) != 0 {
		t.Errorf("staging left: %v", names)
	}
	if _, problems, err := l.Verify(); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v %v", problems, err)
	}
	if st, err := l.ReadStepStatus("a"); err != nil || st.Next != 2 {
		t.Fatalf("status after drop: %+v %v", st, err)
	}
}

// TestDropStepKilled: a drop-step killed before its journal commits leaves
// the lake as before (gc removes the leftover); killed after it, at any
// folder, gc keeps the drop folder and FinishDrops (what the next runner
// or drop-step does) completes it.
func TestDropStepKilled(t *testing.T) {
	defer func() { dropCrashHook = nil }()
	killed := errors.New("killed")
	for at := -1; at <= 4; at++ {
		l := droppableLake(t)
		before := lakeTree(t, l)
		dropCrashHook = func(moved int) error {
			if moved == at {
				return killed
			}
			return nil
		}
		if _, err := l.DropStep("a", 2); !errors.Is(err, killed) {
			t.Fatalf("kill at %d: err %v", at, err)
		}
		dropCrashHook = nil
		old := time.Now().Add(-48 * time.Hour)
		ents, _ := os.ReadDir(filepath.Join(l.Root, StagingDir))
		for _, e := range ents {
			_ = os.Chtimes(filepath.Join(l.Root, StagingDir, e.Name()), old, old)
			_ = filepath.WalkDir(filepath.Join(l.Root, StagingDir, e.Name()), func(p string, _ fs.DirEntry, _ error) error {
				return os.Chtimes(p, old, old)
			})
		}
		removed, err := l.GC(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if at < 0 {
			if len(removed) == 0 {
				t.Errorf("kill before commit: gc removed nothing")
			}
			if got := lakeTree(t, l); !reflect.DeepEqual(got, before) {
				t.Fatalf("kill before commit changed the lake")
			}
			continue
		}
		for _, r := range removed {
			if !strings.HasSuffix(r, LockSuffix) {
				t.Fatalf("kill at %d: gc removed the pending drop %s", at, r)
			}
		}
		if err := l.FinishDrops("b"); err != nil {
			t.Fatal(err)
		}
		if names, _ := readNames(filepath.Join(l.Root, StagingDir)); len(names) == 0 {
			t.Fatalf("kill at %d: FinishDrops of another run finished run a's drop", at)
		}
		if err := l.FinishDrops("a"); err != nil {
			t.Fatal(err)
		}
		if got, want := lakeTree(t, l), withoutStep(before, "a", "2"); !reflect.DeepEqual(got, want) {
			t.Fatalf("kill at %d: after FinishDrops %d files, want %d", at, len(got), len(want))
		}
		if names, _ := readNames(filepath.Join(l.Root, StagingDir)); len(names) != 0 {
			t.Errorf("kill at %d: staging left: %v", at, names)
		}
	}
}
