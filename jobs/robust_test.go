package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
)

// Issue 7: bad inputs that were not handled. Each runs a one-statement job
// and checks the exit code, the message and that nothing was committed.
func TestRobustRunErrors(t *testing.T) {
	huge := "SELECT " + strings.Repeat("1 + ", 2_500_000) + "FROM WHERE"
	tests := []struct {
		name, src string
		code      int
		want      []string
		notWant   []string
	}{
		{name: "duplicate column names", src: "CALL save(query := 'SELECT 1 AS a, 2 AS a', output := 'dup');",
			code: 2, want: []string{"job.sql:1:11", `save: the query's result has two columns named "a" (columns 1 and 2); nothing committed`}},
		{name: "duplicate names differing in case", src: "CALL save(query := 'SELECT 1 AS a, 2 AS \"A\"', output := 'dup');",
			code: 2, want: []string{`two columns named "A" (columns 1 and 2)`}},
		{name: "duplicate columns into a known table", src: "CALL save(query := 'SELECT ''p'' AS prompt_id, ''x'' AS prompt, 1 AS extra, 2 AS extra', output := 'prompts');",
			code: 2, want: []string{`two columns named "extra" (columns 3 and 4)`}},
		{name: "exec killed by a signal", src: "CALL exec(command := 'kill -KILL $$', output := 'out');",
			code: 1, want: []string{"exec: command was killed by SIGKILL (signal 9)"}, notWant: []string{"status -1"}},
		{name: "exec child killed", src: "CALL exec(command := 'sh -c \"kill -TERM \\$\\$\"', output := 'out');",
			code: 1, want: []string{"status 143 (a shell's way of saying that a process it ran was killed by SIGTERM (signal 15))"}},
		{name: "exec output with a wrong type", src: "CREATE TABLE t AS SELECT 'r' || i AS rollout_id, 'x' AS verifier, CASE WHEN i = 2 THEN 'abc' ELSE '0.5' END AS reward FROM range(4) r(i);\n" +
			"CALL exec(input := 't', command := 'cp \"$RLJOB_INPUT\" \"$RLJOB_OUTPUT\"', output := 'rewards');",
			code: 3, want: []string{`exec: column "reward" of the command's output: value 'abc' (VARCHAR) is not a DOUBLE, the type of rewards.reward; nothing committed`}},
		{name: "syntax error in a 10 MB statement", src: huge + ";",
			code: 2, want: []string{"job.sql:1:", "Parser Error", "… ("}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lake := t.TempDir()
			_, err := Run(context.Background(), runOpts(writeJob(t, tc.src), lake))
			if got := ExitCode(err); got != tc.code {
				t.Fatalf("exit code %d, want %d: %v", got, tc.code, err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%.2000s", w, msg)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(msg, w) {
					t.Errorf("error has %q:\n%s", w, msg)
				}
			}
			if len(msg) > 5000 {
				t.Errorf("error message is %d bytes long", len(msg))
			}
			for _, table := range []string{"dup", "out", "prompts"} {
				if _, err := os.Stat(filepath.Join(lake, table)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("table %s committed", table)
				}
			}
			mustVerify(t, lake)
		})
	}
}

// A full disk, a quota or EIO is exit 1 with the path, wherever it is
// wrapped (issue 7: a full disk during save exited 2, as if the job file
// were wrong).
func TestIOErrorsExitOne(t *testing.T) {
	enospc := &fs.PathError{Op: "write", Path: "/lake/_staging/x/part-0-0.parquet", Err: syscall.ENOSPC}
	tests := []struct {
		name string
		err  error
		path string
	}{
		{"ENOSPC through ClassifySQL", ClassifySQL(fmt.Errorf("jobs: save: write x: %w", enospc), Pos{File: "j.sql", Line: 1, Col: 1}, "CALL save(...)"), "/lake/_staging/x/part-0-0.parquet"},
		{"EIO wrapped in a usage error", &UsageError{Msg: "x", Err: &fs.PathError{Op: "read", Path: "/lake/a", Err: syscall.EIO}}, "/lake/a"},
		{"EDQUOT in a data error", &DataError{Msg: "x", Err: &os.LinkError{Op: "rename", Old: "/a", New: "/lake/b", Err: syscall.EDQUOT}}, "/lake/b"},
		{"DuckDB out of space", ClassifySQL(&duckdb.Error{Type: duckdb.ErrorTypeIO, Msg: `IO Error: Could not write file "/tmp/out/x.parquet": No space left on device`}, Pos{}, "COPY ..."), "/tmp/out/x.parquet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.err); got != 1 {
				t.Errorf("ExitCode = %d, want 1 (%v)", got, tc.err)
			}
			err := AsIOError(tc.err)
			var ie *IOError
			if !errors.As(err, &ie) || ie.Path != tc.path {
				t.Fatalf("AsIOError = %#v, want path %s", err, tc.path)
			}
			if !strings.Contains(err.Error(), "I/O error on "+tc.path) || !strings.Contains(err.Error(), "rerun the same command") {
				t.Errorf("message: %v", err)
			}
		})
	}
	// Not I/O: unchanged.
	for _, err := range []error{&UsageError{Msg: "x"}, &DataError{Msg: "x"}, &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}} {
		if AsIOError(err) != err || IsIOError(err) {
			t.Errorf("%v taken for an I/O error", err)
		}
	}
}

func TestInterruptedExitCodes(t *testing.T) {
	for _, tc := range []struct {
		sig  os.Signal
		code int
		name string
	}{{syscall.SIGINT, 130, "SIGINT (signal 2)"}, {syscall.SIGTERM, 143, "SIGTERM (signal 15)"}} {
		err := fmt.Errorf("run: %w", &InterruptedError{Signal: tc.sig, Step: 4, HasStep: true})
		if got := ExitCode(err); got != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.sig, got, tc.code)
		}
		for _, w := range []string{"interrupted by " + tc.name, "step 4 is incomplete", "rerun the same command to resume from the last complete step"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("message lacks %q: %v", w, err)
			}
		}
	}
}

func TestErrorEchoIsClipped(t *testing.T) {
	stmt := "SELECT '" + strings.Repeat("é", 1_000_000) + "' FROM WHERE"
	msg := (&UsageError{Pos: Pos{File: "j.sql", Line: 1, Col: 1}, Msg: "Parser Error: " + stmt, Stmt: stmt}).Error()
	if len(msg) > 3000 {
		t.Fatalf("message is %d bytes", len(msg))
	}
	if !strings.Contains(msg, "more bytes)") || !strings.HasPrefix(msg, "j.sql:1:1: Parser Error: SELECT 'éé") {
		t.Errorf("message: %.400s", msg)
	}
	if !strings.Contains(msg, "\n  in statement:\n    SELECT 'éé") {
		t.Errorf("statement not echoed: %.400s", msg)
	}
	short := (&UsageError{Msg: "m", Stmt: "SELECT 1"}).Error()
	if short != "m\n  in statement:\n    SELECT 1" {
		t.Errorf("short statement changed: %q", short)
	}
}
