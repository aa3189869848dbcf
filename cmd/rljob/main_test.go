package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// TestMain lets the test binary act as rljob: with RLJOB_TEST_MAIN=1 it runs
// Main on its arguments (the crash test re-executes itself this way);
// RLJOB_TEST_DEVICE=mirror then makes --device cuda open the mirror
// backend (trainer.MirrorBackend: the CPU kernels on a second copy of
// the model's buffers, as a GPU holds them). RLJOB_TEST_BACKEND=mirror
// puts the whole test run, device cpu included, on the mirror: every
// golden test then checks the residency rules of its stages.
func TestMain(m *testing.M) {
	if os.Getenv("RLJOB_TEST_BACKEND") == "mirror" { // every model of this process and its children on the mirror
		trainer.OverrideCPUDevice(trainer.MirrorBackend())
	}
	if os.Getenv("RLJOB_TEST_MAIN") == "1" {
		if os.Getenv("RLJOB_TEST_DEVICE") == "mirror" {
			trainer.OverrideCUDA(func() (trainer.Backend, error) { return trainer.MirrorBackend(), nil })
		}
		ctx, stop := signalContext(context.Background())
		code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// rljob runs Main in-process and returns its exit code, stdout and stderr.
func rljob(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot maps every lake file outside _staging and _locks to its sha256.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == "_staging" || rel == "_locks" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		snap[filepath.ToSlash(rel)] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// baseLake makes a lake holding one completed step of the toy job under run
// "base", plus a user table prompts.
func baseLake(t *testing.T) string {
	t.Helper()
	lake := filepath.Join(t.TempDir(), "lake")
	if code, _, stderr := rljob(t, nil, "run", "testdata/toy.sql", "--lake", lake, "--run", "base", "--log-format", "json"); code != 0 {
		t.Fatalf("base run: exit %d: %s", code, stderr)
	}
	return lake
}

func TestBadInput(t *testing.T) {
	syntaxJob := "CALL save(query := 'SELECT 1 AS x', output := 'early');\n\n" +
		"CREATE TABLE t AS\n  SELECT 1 FROM WHERE x;\n"
	tests := []struct {
		name string
		job  string // job file content ("" = toy job / none)
		args []string
		// setup runs before the command, after the base lake exists; it
		// returns a cleanup.
		setup func(t *testing.T, lake string) func()
		code  int
		want  []string // substrings of stderr
		// newFiles: the command may add files under these prefixes (a
		// successful no-op run adds its step marker).
		newFiles []string
		env      map[string]string // the command's environment
	}{
		{
			name: "sql syntax error",
			job:  syntaxJob,
			code: 2,
			want: []string{"job.sql:4:17: Parser Error: syntax error at or near \"WHERE\"", "SELECT 1 FROM WHERE x"},
		},
		{
			name: "unknown stage",
			job:  "CALL rewrad(verifier := 'gsm8k');\n",
			code: 2,
			want: []string{"job.sql:1:1", `unknown stage "rewrad"`, "did you mean reward?", "stages: exec, ", "rljob stages lists them"},
		},
		{
			name: "unknown argument",
			job:  "SELECT 1;\nCALL reward(verfier := 'gsm8k');\n",
			code: 2,
			want: []string{"job.sql:2:13", `unknown argument "verfier" for stage reward`, `did you mean "verifier"?`, "valid arguments of reward: verifier, pattern, rollouts, output"},
		},
		{
			name: "ill-typed argument",
			job:  "CALL reward(verifier := 3);\n",
			code: 2,
			want: []string{"job.sql:1:13", "argument verifier of stage reward: want a string in single quotes, got int 3"},
		},
		{
			name: "unknown verifier",
			job:  "CALL reward(verifier := 'gsm9k');\n",
			code: 2,
			want: []string{`"gsm9k" is not one of`, "did you mean 'gsm8k'?"},
		},
		{
			name: "output table outside the lake",
			job:  "CALL save(query := 'SELECT 1 AS x', output := '../x');\n",
			code: 2,
			want: []string{`cannot write lake table "../x"`},
		},
		{
			name: "missing required column",
			job:  "CREATE TABLE t AS SELECT 'a' AS rollout_id, 'x' AS completion;\nCALL reward(rollouts := 't');\n",
			code: 3,
			want: []string{"job.sql:2:13", `reward: table t has no column "answer"`, "reward needs columns rollout_id, completion, answer; t has rollout_id, completion"},
		},
		{
			name:     "empty input table",
			job:      "CALL reward(verifier := 'exact');\nCREATE TABLE e AS SELECT 'x' AS rollout_id, 'a' AS completion, 'a' AS answer WHERE false;\nCALL reward(rollouts := 'e');\n",
			code:     0,
			want:     []string{"reward: no rollouts in step 0 of run x yet", "reward: no rows in e"},
			newFiles: []string{"steps/run=x/", "calls/run=x/"},
		},
		{
			name: "corrupt parquet file",
			job:  "CREATE TABLE t AS SELECT * FROM prompts;\n",
			setup: func(t *testing.T, lake string) func() {
				writeFile(t, lake, "prompts/bad.parquet", "this is not parquet")
				return nil
			},
			code: 3,
			want: []string{"job.sql:1:1", "prompts/bad.parquet"},
		},
		{
			name: "run name with ..",
			args: []string{"--run", "../x"},
			code: 2,
			want: []string{`bad run name "../x"`},
		},
		{
			name: "run name with /",
			args: []string{"--run", "a/b"},
			code: 2,
			want: []string{`bad run name "a/b"`},
		},
		{
			name: "second runner",
			setup: func(t *testing.T, lake string) func() {
				l, err := jobs.AcquireRunLock(jobs.LockPath(lake, "x", 0, 1), "x")
				if err != nil {
					t.Fatal(err)
				}
				return func() { l.Release() }
			},
			code: 4,
			want: []string{`run "x" is locked by another runner (pid=`, "_locks/run=x.lock"},
		},
		{
			name: "unsharded runner beside a shard runner",
			setup: func(t *testing.T, lake string) func() {
				l, err := jobs.AcquireRunnerLock(lake, "x", 1, 2)
				if err != nil {
					t.Fatal(err)
				}
				return func() { l.Release() }
			},
			code: 4,
			want: []string{`run "x" is locked by another runner (shard runners: run=x.shard=1-of-2.lock pid=`, "never both"},
		},
		{
			name: "shard runner beside an unsharded runner",
			args: []string{"--shard", "1/2"},
			setup: func(t *testing.T, lake string) func() {
				l, err := jobs.AcquireRunnerLock(lake, "x", 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				return func() { l.Release() }
			},
			code: 4,
			want: []string{`run "x" is locked by another runner (a runner without --shard, or a drop-step: pid=`},
		},
		{
			name: "missing job file",
			args: []string{"nosuch.sql"},
			code: 2,
			want: []string{"job file nosuch.sql does not exist"},
		},
		{
			name: "bad shard",
			args: []string{"--shard", "2/2"},
			code: 2,
			want: []string{`bad --shard "2/2"`},
		},
		{
			name: "bad flag",
			args: []string{"--stesp", "3"},
			code: 2,
			want: []string{"unknown flag: --stesp"},
		},
		{
			name: "negative --until-step",
			args: []string{"--until-step", "-5"},
			code: 2,
			want: []string{"--until-step -5: must be >= 0"},
		},
		{
			name: "unclosed CALL",
			job:  "SELECT 1;\nCALL save(\n  query := 'SELECT 1 AS x', output := 't';\nSELECT 2;\n",
			code: 2,
			want: []string{"job.sql:2:10: unclosed parenthesis: the ( of CALL save is never closed"},
		},
		{
			name: "1-based Slurm array task out of range",
			args: []string{"--dry-run"},
			env:  map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"},
			code: 2,
			want: []string{"task 3 is not one of 1..2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lake := baseLake(t)
			dir := t.TempDir()
			job := "testdata/toy.sql"
			if tc.job != "" {
				job = writeFile(t, dir, "job.sql", tc.job)
			}
			if tc.setup != nil {
				if cleanup := tc.setup(t, lake); cleanup != nil {
					defer cleanup()
				}
			}
			before := snapshot(t, lake)
			args := []string{"run", job, "--lake", lake, "--run", "x", "--log-format", "json"}
			if len(tc.args) > 0 && !strings.HasPrefix(tc.args[0], "-") {
				args[1] = tc.args[0]
				args = append(args, tc.args[1:]...)
			} else {
				args = append(args, tc.args...)
			}
			code, _, stderr := rljob(t, tc.env, args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			after := snapshot(t, lake)
			for f, h := range before {
				if after[f] != h {
					t.Errorf("committed file %s changed or vanished", f)
				}
			}
			for f := range after {
				if _, ok := before[f]; ok {
					continue
				}
				allowed := false
				for _, p := range tc.newFiles {
					allowed = allowed || strings.HasPrefix(f, p)
				}
				if !allowed {
					t.Errorf("new file %s", f)
				}
			}
			if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
				t.Errorf("lake verify: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}

// TestCorruptTableOthersUsable: a corrupt file in one table is named when
// that table is read, and the other tables stay queryable.
func TestCorruptTableOthersUsable(t *testing.T) {
	lake := baseLake(t)
	writeFile(t, lake, "prompts/bad.parquet", "garbage")
	code, _, stderr := rljob(t, nil, "sql", "--lake", lake, "SELECT count(*) FROM prompts")
	if code != 3 || !strings.Contains(stderr, "prompts/bad.parquet") {
		t.Errorf("reading prompts: exit %d, stderr %s", code, stderr)
	}
	code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", "SELECT count(*) AS n FROM rewards")
	if code != 0 || out != "n\n6\n" {
		t.Errorf("reading rewards: exit %d, out %q, stderr %s", code, out, stderr)
	}
}

// TestLakeVerifyNamesCorruptFile: a committed file whose bytes changed fails
// lake verify with exit 3, naming it.
func TestLakeVerifyNamesCorruptFile(t *testing.T) {
	lake := baseLake(t)
	var victim string
	filepath.WalkDir(filepath.Join(lake, "rewards"), func(p string, d fs.DirEntry, err error) error {
		if strings.HasSuffix(p, ".parquet") {
			victim = p
		}
		return nil
	})
	b, _ := os.ReadFile(victim)
	b[len(b)/2] ^= 0xff
	os.WriteFile(victim, b, 0o644)
	code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake)
	rel, _ := filepath.Rel(lake, victim)
	if code != 3 || !strings.Contains(out+stderr, filepath.ToSlash(rel)) {
		t.Errorf("exit %d, want 3 naming %s:\n%s%s", code, rel, out, stderr)
	}
}

func TestDuckDBProcedureCall(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	job := writeFile(t, t.TempDir(), "job.sql", "CALL pragma_version();\nCALL duckdb_functions();\n")
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestDryRun(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	code, out, stderr := rljob(t, nil, "run", "testdata/toy.sql", "--lake", lake, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"testdata/toy.sql:10:1:", "stage CALL save(source := 'samples', output := 'rollouts') -> rollouts",
		"ok: 4 statements, 3 stage calls checked; run \"main\" would start at step 0"} {
		if !strings.Contains(out, w) {
			t.Errorf("plan lacks %q:\n%s", w, out)
		}
	}
	if _, err := os.Stat(lake); !os.IsNotExist(err) {
		t.Errorf("dry run created the lake")
	}
}

func TestSQLFormats(t *testing.T) {
	lake := baseLake(t)
	q := "SELECT step, name, value FROM metrics ORDER BY ALL"
	tests := []struct {
		format string
		want   string
	}{
		{"table", "step | name     | value\n-----+----------+-------------------\n   0 | accuracy | 0.3333333333333333\n(1 row)\n"},
		{"csv", "step,name,value\n0,accuracy,0.3333333333333333\n"},
		{"json", `{"step":0,"name":"accuracy","value":0.3333333333333333}` + "\n"}, // column order kept
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", tc.format, q)
			if code != 0 || out != tc.want {
				t.Errorf("exit %d\ngot:\n%s\nwant:\n%s\n%s", code, out, tc.want, stderr)
			}
		})
	}
	pq := filepath.Join(t.TempDir(), "m.parquet")
	if code, _, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "parquet", "-o", pq, q); code != 0 {
		t.Fatalf("parquet: %s", stderr)
	}
	code, out, _ := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", "SELECT count(*) AS n FROM '"+pq+"'")
	if code != 0 || out != "n\n1\n" {
		t.Errorf("parquet round trip: %q", out)
	}
	// Errors: a syntax error names <query>:line:col; a bad format is usage.
	code, _, stderr := rljob(t, nil, "sql", "--lake", lake, "SELECT 1,\nFROM metrics WHERE")
	if code != 2 || !strings.Contains(stderr, "<query>:2:") {
		t.Errorf("syntax error: exit %d %s", code, stderr)
	}
	// json keeps the select list's order, whatever the names; nulls are null.
	code, out, _ = rljob(t, nil, "sql", "--lake", lake, "--format", "json", "SELECT 2 AS z, NULL::INT AS a, [1, 2] AS m, 'x' AS b")
	if want := `{"z":2,"a":null,"m":[1,2],"b":"x"}` + "\n"; code != 0 || out != want {
		t.Errorf("json order: exit %d %q, want %q", code, out, want)
	}
	if code, _, _ := rljob(t, nil, "sql", "--lake", lake, "--format", "xml", "SELECT 1"); code != 2 {
		t.Errorf("bad format: exit %d", code)
	}
}

func TestCheckSQLArgs(t *testing.T) {
	read := func(p string) ([]byte, error) {
		if p == "q.sql" {
			return []byte("SELECT 2"), nil
		}
		return nil, os.ErrNotExist
	}
	tests := []struct {
		name         string
		args         []string
		file, format string
		src, wantErr string
	}{
		{name: "query", args: []string{"SELECT 1"}, format: "table", src: "SELECT 1"},
		{name: "file", file: "q.sql", format: "csv", src: "SELECT 2"},
		{name: "stdin", file: "-", format: "json", src: "SELECT 3"},
		{name: "both", args: []string{"SELECT 1"}, file: "q.sql", format: "table", wantErr: "not both"},
		{name: "none", format: "table", wantErr: "no query given"},
		{name: "two queries", args: []string{"a", "b"}, format: "table", wantErr: "one QUERY argument"},
		{name: "missing file", file: "nope.sql", format: "table", wantErr: "cannot read SQL file nope.sql"},
		{name: "bad format", args: []string{"SELECT 1"}, format: "yaml", wantErr: `bad --format "yaml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, _, err := checkSQLArgs(tc.args, tc.file, tc.format, read, strings.NewReader("SELECT 3"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || jobs.ExitCode(err) != 2 {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || src != tc.src {
				t.Fatalf("src %q err %v", src, err)
			}
		})
	}
}

func TestStagesAndVersion(t *testing.T) {
	code, out, _ := rljob(t, nil, "stages")
	if code != 0 {
		t.Fatal(code)
	}
	for _, w := range []string{"CALL save(query := query, source := table, output := string)", "CALL reward(", "CALL exec(", "CALL log_metrics(",
		"verifier        string  default 'exact'", "rollouts        table   default this step's rollouts not yet scored by this verifier"} {
		if !strings.Contains(out, w) {
			t.Errorf("stages lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = rljob(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "rljob ") || !strings.Contains(out, "duckdb v") || !strings.Contains(out, "\nmodule ") {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ = rljob(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "4    the run is locked by another runner") || !strings.Contains(out, "130  interrupted by SIGINT (143: SIGTERM)") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, _ := rljob(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestLakeEnvDefault(t *testing.T) {
	lake := baseLake(t)
	code, out, stderr := rljob(t, map[string]string{"RLJOB_LAKE": lake}, "lake", "ls")
	if code != 0 || !strings.Contains(out, "rewards") || !strings.Contains(out, "base") {
		t.Errorf("lake ls via RLJOB_LAKE: %d %s %s", code, out, stderr)
	}
	code, out, _ = rljob(t, nil, "lake", "gc", "--lake", lake, "--older-than", "0s")
	if code != 0 || !strings.Contains(out, "ok:") {
		t.Errorf("gc: %d %s", code, out)
	}
}

// TestProgressBar: a bar renders only after its one-second delay and Done
// returns promptly; a short one prints nothing.
func TestProgressBar(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps over a second; skipped under -short")
	}
	var buf bytes.Buffer
	m := &barMaker{e: &env{stderr: &buf}}
	short := m.Bar("quick", 10)
	short.Add(10)
	short.Done()
	if buf.Len() != 0 {
		t.Errorf("short stage drew a bar: %q", buf.String())
	}
	long := m.Bar("slow", 100)
	for i := 0; i < 12; i++ {
		long.Add(5)
		time.Sleep(100 * time.Millisecond)
	}
	long.Done()
	if !strings.Contains(buf.String(), "slow") {
		t.Errorf("long stage drew no bar: %q", buf.String())
	}
}
