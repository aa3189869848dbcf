package arrowio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ageStaging sets every mtime under the staging folder two hours back.
func ageStaging(t *testing.T, l *Lake) {
	t.Helper()
	old := time.Now().Add(-2 * time.Hour)
	err := filepath.WalkDir(l.Path(StagingDir), func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeSmall(t *testing.T, s *Staged, name, content string) {
	t.Helper()
	if err := s.WriteFile(name, func(w io.Writer) error { _, err := io.WriteString(w, content); return err }); err != nil {
		t.Fatal(err)
	}
}

// Issue 9: `lake gc --older-than 0s` looped during a run deleted a live
// writer's staging folder, and the commit then published a checkpoint
// without its files. A live writer's folder survives any gc, and a dead
// writer's folder (its flock released, as when the process dies) goes.
func TestGCNeverRemovesLiveWriter(t *testing.T) {
	l := newLake(t)
	live, err := l.Begin(Unit{Table: TableCheckpoints, Run: "a", Step: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeSmall(t, live, "config.json", "{}")
	dead, err := l.Begin(Unit{Table: TableRewards, Run: "a", Step: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeSmall(t, dead, "x.txt", "x")
	dead.lock.Close() // the writer dies: the kernel drops its flock
	ageStaging(t, l)

	removed, err := l.GC(0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{StagingDir + "/" + filepath.Base(dead.Path())}; !slices.Equal(removed, want) {
		t.Fatalf("GC(0) removed %v, want %v", removed, want)
	}
	for _, p := range []string{dead.Path(), dead.Path() + LockSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dead writer's %s still there", p)
		}
	}
	if _, err := os.Stat(filepath.Join(live.Path(), "config.json")); err != nil {
		t.Fatalf("gc touched the live writer's folder: %v", err)
	}
	writeSmall(t, live, "model.safetensors", "weights")
	m, err := live.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 {
		t.Fatalf("manifest files %+v", m.Files)
	}
	// The commit removed the lock file with the folder: staging is empty.
	if ents, _ := os.ReadDir(l.Path(StagingDir)); len(ents) != 0 {
		t.Fatalf("staging after commit: %v", ents)
	}
	if _, ps, _ := l.Verify(); len(ps) != 0 {
		t.Fatalf("verify: %v", ps)
	}
}

// A folder without a lock file (an older rljob's) falls under the age rule;
// an orphan lock file (its folder gone, nobody holding it) is removed.
func TestGCLegacyFolderAndOrphanLock(t *testing.T) {
	l := newLake(t)
	legacy := l.Path(StagingDir + "/rewards.a.0.0.0.123")
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := l.Path(StagingDir + "/rewards.a.1.0.0.456" + LockSuffix)
	if err := os.WriteFile(orphan, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if removed, err := l.GC(time.Hour); err != nil || len(removed) != 0 {
		t.Fatalf("GC(1h) of fresh entries removed %v, %v", removed, err)
	}
	ageStaging(t, l)
	removed, err := l.GC(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{StagingDir + "/rewards.a.0.0.0.123", StagingDir + "/rewards.a.1.0.0.456" + LockSuffix}
	if !slices.Equal(removed, want) {
		t.Fatalf("GC removed %v, want %v", removed, want)
	}
}

// A commit whose staged files vanished (or changed size) refuses, and
// nothing is published.
func TestCommitChecksStagedFiles(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "model.safetensors")); err != nil {
				t.Fatal(err)
			}
		}, "model.safetensors was written to the staging folder"},
		{"file truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "model.safetensors"), 2); err != nil {
				t.Fatal(err)
			}
		}, "model.safetensors in the staging folder"},
		{"folder removed", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLake(t)
			u := Unit{Table: TableCheckpoints, Run: "a", Step: 0}
			s, err := l.Begin(u, nil)
			if err != nil {
				t.Fatal(err)
			}
			writeSmall(t, s, "config.json", "{}")
			writeSmall(t, s, "model.safetensors", "weights")
			tc.damage(t, s.Path())
			_, err = s.Commit()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Commit err = %v, want %q", err, tc.want)
			}
			if ok, _ := l.IsCommitted(u); ok {
				t.Fatal("unit committed")
			}
			if ents, _ := os.ReadDir(l.Path(StagingDir)); len(ents) != 0 {
				t.Fatalf("staging after a failed commit: %v", ents)
			}
		})
	}
}

// Folders and files follow the umask: a lake shared by a group (umask 002)
// is group-writable, and umask 022 gives 0755 folders and 0644 files.
func TestCommittedModesFollowUmask(t *testing.T) {
	for _, tc := range []struct {
		umask          int
		dirMode, fMode os.FileMode
	}{
		{0o022, 0o755, 0o644},
		{0o002, 0o775, 0o664},
		{0o077, 0o700, 0o600},
	} {
		old := syscall.Umask(tc.umask)
		l := newLake(t)
		m := commitRewards(t, l, Unit{Table: TableRewards, Run: "a", Step: 0}, 2)
		syscall.Umask(old)
		unit := l.Path(m.Unit.Dir())
		for _, c := range []struct {
			p    string
			want os.FileMode
		}{
			{unit, tc.dirMode},
			{filepath.Dir(unit), tc.dirMode}, // step=0
			{l.Path(TableRewards), tc.dirMode},
			{filepath.Join(unit, m.Files[0].Name), tc.fMode},
			{filepath.Join(unit, ManifestName), tc.fMode},
		} {
			fi, err := os.Stat(c.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != c.want {
				t.Errorf("umask %03o: %s has mode %03o, want %03o", tc.umask, c.p, got, c.want)
			}
		}
	}
}

// Files in a user table's folder outside any commit unit are listed as
// unmanaged (warnings, not problems); in a table rljob writes they are
// problems.
func TestVerifyListsUnmanagedFiles(t *testing.T) {
	l := newLake(t)
	commitRewards(t, l, Unit{Table: TableRewards, Run: "a", Step: 0}, 2)
	for _, f := range []string{"prompts/extra.parquet", "prompts/notes.txt", "eval_set/run=a/x.csv", "prompts/.hidden"} {
		if err := os.MkdirAll(filepath.Dir(l.Path(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.Path(f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A staging leftover and a lock are never listed.
	if _, err := l.Begin(Unit{Table: TableRewards, Run: "a", Step: 1}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := l.VerifyReport()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"eval_set/run=a/x.csv", "prompts/extra.parquet", "prompts/notes.txt"}
	if !slices.Equal(r.Unmanaged, want) || len(r.Problems) != 0 {
		t.Fatalf("unmanaged %v problems %v; want %v and none", r.Unmanaged, r.Problems, want)
	}
	if err := os.WriteFile(l.Path("rewards/run=a/stray.parquet"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = l.VerifyReport()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Path != "rewards/run=a/stray.parquet" {
		t.Fatalf("problems %v", r.Problems)
	}
}
