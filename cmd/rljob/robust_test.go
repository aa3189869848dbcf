package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rljob/rljob/jobs"
)

func TestRunFlagChecks(t *testing.T) {
	tests := []struct {
		name string
		o    runFlags
		args []string
		want string // "" = ok
	}{
		{"ok", runFlags{steps: 3, until: 10}, []string{"j.sql"}, ""},
		{"no limit", runFlags{steps: 1}, []string{"j.sql"}, ""},
		{"no job", runFlags{steps: 1}, nil, "run takes one job file, got 0 arguments"},
		{"negative until", runFlags{steps: 1, until: -5}, []string{"j.sql"}, "--until-step -5: must be >= 0"},
		{"negative steps", runFlags{steps: -1}, []string{"j.sql"}, "--steps -1: must be >= 0"},
		{"negative wait", runFlags{steps: 1, waitTimeout: -time.Second}, []string{"j.sql"}, "--wait-timeout -1s: must be >= 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.check(tc.args)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || jobs.ExitCode(err) != 2 {
				t.Fatalf("err = %v, want %q (exit 2)", err, tc.want)
			}
		})
	}
}

// Issue 7: --lake <a regular file> exited 1 for run and 2 (saying "does not
// exist") for sql and lake. Every command now says what the path is, exit 2.
func TestLakeFlagIsAFile(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "notalake", "x")
	under := filepath.Join(file, "lake")
	job := writeFile(t, dir, "job.sql", "SELECT 1;\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", job, "--lake", file}, "--lake " + file + " is a regular file, not a folder"},
		{[]string{"run", job, "--lake", under}, "--lake " + under + " lies under " + file + ", which is a regular file"},
		{[]string{"sql", "--lake", file, "SELECT 1"}, "--lake " + file + " is a regular file, not a folder"},
		{[]string{"lake", "ls", "--lake", file}, "--lake " + file + " is a regular file, not a folder"},
		{[]string{"lake", "verify", "--lake", file}, "--lake " + file + " is a regular file, not a folder"},
		{[]string{"lake", "gc", "--lake", file}, "--lake " + file + " is a regular file, not a folder"},
		{[]string{"sql", "--lake", filepath.Join(dir, "nosuch"), "SELECT 1"}, "lake " + filepath.Join(dir, "nosuch") + " does not exist"},
	} {
		code, _, stderr := rljob(t, nil, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("rljob %s: exit %d, want 2 with %q:\n%s", strings.Join(tc.args, " "), code, tc.want, stderr)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Errorf("the file was changed")
	}
}

// Issue 7 item 10: a 1-based Slurm array (sbatch --array=1-2) is shards 0
// and 1 of 2.
func TestSlurmOneBasedArray(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	for id, want := range map[string]string{"1": "(shard 0/2)", "2": "(shard 1/2)"} {
		env := map[string]string{"SLURM_ARRAY_TASK_ID": id, "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"}
		code, out, stderr := rljob(t, env, "run", "testdata/toy.sql", "--lake", lake, "--dry-run")
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("task %s: exit %d, want %s in:\n%s%s", id, code, want, out, stderr)
		}
	}
}

// Issue 9: lake verify lists the files no commit unit names (a warning,
// exit 0, as docs/lake.md says: user data is read and reported as unmanaged).
func TestLakeVerifyListsUnmanaged(t *testing.T) {
	lake := baseLake(t)
	writeFile(t, lake, "prompts/notes.txt", "hello")
	writeFile(t, lake, "eval_set/extra.parquet", "not even parquet")
	code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake)
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, stderr)
	}
	for _, w := range []string{"unmanaged eval_set/extra.parquet: not in any commit unit", "unmanaged prompts/notes.txt", "2 unmanaged file(s) listed above (not an error)"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// Issue 7: SIGTERM exited 1 with "context canceled". The statement in
// progress stops, the exit code is 143, the message says how to resume,
// and the lake holds only complete units.
func TestSIGTERMSaysHowToResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process until it is signalled; skipped under -short")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	job := writeFile(t, dir, "job.sql", "CALL save(query := 'SELECT 1 AS x', output := 'early');\n"+
		"SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) = 42;\n")
	cmd := exec.Command(self, "run", job, "--lake", lake, "--run", "s", "--log-format", "json")
	cmd.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the save to commit: the child is then in the endless query.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m, _ := filepath.Glob(filepath.Join(lake, "early", "run=s", "step=0", "*", "_commit.json")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("save never committed:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("exit: %v, want status 143\n%s", err, stderr.String())
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("took %v to stop", d)
	}
	for _, w := range []string{"interrupted by SIGTERM (signal 15)", "step 0 is incomplete", "rerun the same command to resume from the last complete step"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("stderr says context canceled:\n%s", stderr.String())
	}
	if code, out, serr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
		t.Errorf("lake verify: exit %d\n%s%s", code, out, serr)
	}
}

// Issue 7: a full disk during save exited 2, as if the job file were wrong.
// A file-size limit (ulimit -f, SIGXFSZ ignored) makes the Parquet write
// fail with EFBIG, as a full disk fails with ENOSPC: exit 1, naming the
// file, nothing committed.
func TestWriteFailureIsAnIOError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process under a file-size limit; skipped under -short")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	job := writeFile(t, dir, "job.sql", "CALL save(query := 'SELECT md5(CAST(i AS VARCHAR)) AS h FROM range(200000) t(i)', output := 'big');\n")
	// ulimit -f counts 512-byte blocks in dash, 1024 in bash: 400 is at
	// most 400 KB, and the file is about 6 MB.
	cmd := exec.Command("sh", "-c", `trap "" XFSZ; ulimit -f 400 && exec "$0" "$@"`, self, "run", job, "--lake", lake, "--log-format", "json")
	cmd.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
	}
	for _, w := range []string{"I/O error on " + filepath.Join(lake, "_staging"), "part-0-0.parquet", "file too large", "rerun the same command"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(lake, "big")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("table big committed")
	}
	if code, out, serr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
		t.Errorf("lake verify: exit %d\n%s%s", code, out, serr)
	}
}

// A command other than run, interrupted, exits 128+signal without talking
// about resuming a run.
func TestInterruptedSQL(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&jobs.InterruptedError{Signal: syscall.SIGINT})
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"sql", "--lake", lake, "SELECT 1"}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != 130 || !strings.Contains(errb.String(), "interrupted by SIGINT (signal 2)") || !strings.Contains(errb.String(), "the command stopped early; rerun it") {
		t.Errorf("exit %d, stderr:\n%s", code, errb.String())
	}
}
