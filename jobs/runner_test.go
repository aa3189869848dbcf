package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// toyJob makes 6 prompts per step and rollouts whose completion is right
// for prompt ids 0 and 3 mod 3 (i % 3 = 0), scores them exactly and logs
// accuracy: 2 of 6 correct.
const toyJob = `
CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, 'what is ' || i AS prompt, CAST(i AS VARCHAR) AS answer
FROM range(6) t(i);

CREATE OR REPLACE TABLE samples AS
SELECT prompt_id || '/' || getvariable('step') AS rollout_id, prompt_id, 0 AS sample_idx, prompt,
       CASE WHEN CAST(answer AS INT) % 3 = 0 THEN answer ELSE 'wrong' END AS completion, answer
FROM batch ORDER BY prompt_id;

CALL save(source := 'samples', output := 'rollouts');
CALL reward(verifier := 'exact');
CALL log_metrics(query := 'SELECT ''accuracy'' AS name, avg(correct::DOUBLE) AS value FROM this_step_rewards');
`

// writeJob writes src to a job file in a fresh temporary folder.
func writeJob(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.sql")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runOpts(job, lake string) Options {
	return Options{JobFile: job, Lake: lake, Run: "r", Steps: 1, Log: zerolog.Nop()}
}

// lakeSnapshot maps every file of the lake (except _staging and _locks) to
// its sha256.
func lakeSnapshot(t *testing.T, root string) map[string]string {
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
		snap[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return snap
}

func mustVerify(t *testing.T, root string) int {
	t.Helper()
	n, problems, err := (&arrowio.Lake{Root: root}).Verify()
	if err != nil || len(problems) > 0 {
		t.Fatalf("lake verify: %v %v", err, problems)
	}
	return n
}

// query runs q on a fresh engine over root and returns the rows as strings.
func query(t *testing.T, root, q string) []string {
	t.Helper()
	ctx := context.Background()
	e, err := rsql.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rows, err := e.Conn().QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			parts = append(parts, strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " ")))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	}
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(sprint(v), "\t", " "), "  ", " "))
}

func TestRunStepsAndResume(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	job := writeJob(t, toyJob)
	o := runOpts(job, lake)
	o.Steps = 2
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstStep != 0 || res.Steps != 2 {
		t.Fatalf("result %+v", res)
	}
	// Resume: one more step starts at 2.
	o.Steps = 1
	if res, err = Run(ctx, o); err != nil || res.FirstStep != 2 || res.Steps != 1 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	// --until-step 3 is already reached: nothing runs.
	o.Steps, o.UntilStep = 5, 3
	if res, err = Run(ctx, o); err != nil || res.Steps != 0 {
		t.Fatalf("until-step: %+v %v", res, err)
	}
	if n := mustVerify(t, lake); n != 3*7 {
		t.Errorf("verified %d units, want 21 (3 steps x rollouts, rewards, metrics, steps, 3 call records)", n)
	}
	got := query(t, lake, `SELECT step, value FROM metrics WHERE name = 'accuracy' ORDER BY step`)
	want := []string{"0|0.3333333333333333", "1|0.3333333333333333", "2|0.3333333333333333"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("metrics = %v, want %v", got, want)
	}
	got = query(t, lake, `SELECT count(*), count(DISTINCT rollout_id), sum(correct::INT) FROM rewards WHERE run = 'r'`)
	if got[0] != "18|18|6" {
		t.Errorf("rewards = %v", got)
	}
	got = query(t, lake, `SELECT step, shard, job_sha256 FROM steps ORDER BY step`)
	if len(got) != 3 || !strings.HasPrefix(got[2], "2|0|") {
		t.Errorf("steps = %v", got)
	}
}

// TestResumeSkipsCommittedCalls simulates a crash after the save of step 0
// (its outputs and call record committed, nothing after): the rerun skips
// save, runs reward and log_metrics, and the result equals an uninterrupted
// run's.
func TestResumeSkipsCommittedCalls(t *testing.T) {
	res := crashAndResume(t, toyJob, []string{"steps", "rewards", "metrics", "calls/run=r/step=0/part-3-0", "calls/run=r/step=0/part-4-0"},
		`SELECT rollout_id, completion FROM rollouts ORDER BY ALL`,
		`SELECT rollout_id, reward, correct, extracted FROM rewards ORDER BY ALL`,
		`SELECT step, name, value FROM metrics ORDER BY ALL`)
	if res.FirstStep != 0 || res.Skipped != 1 {
		t.Fatalf("rerun: %+v, want step 0 with 1 skipped call", res)
	}
}

// crashAndResume runs src's step 0 on two lakes, removes the lake folders
// lost (what a crash left uncommitted) from the second, reruns it and
// checks that queries give the same rows on both. It returns the rerun's
// result.
func crashAndResume(t *testing.T, src string, lost []string, queries ...string) *Result {
	t.Helper()
	ctx := context.Background()
	job := writeJob(t, src)
	full, part := t.TempDir(), t.TempDir()
	for _, lake := range []string{full, part} {
		if _, err := Run(ctx, runOpts(job, lake)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range lost {
		if err := os.RemoveAll(filepath.Join(part, d)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(ctx, runOpts(job, part))
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, part)
	for _, q := range queries {
		if a, b := query(t, full, q), query(t, part, q); strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s:\nfull %v\nresumed %v", q, a, b)
		}
	}
	return res
}

// A step interrupted under one job file is not resumed with another: the
// rerun is refused (exit 2) naming both hashes, and changes nothing.
func TestResumeRefusesChangedJob(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	job := writeJob(t, toyJob)
	if _, err := Run(ctx, runOpts(job, lake)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(lake, "steps")); err != nil { // the crash: no marker
		t.Fatal(err)
	}
	before := lakeSnapshot(t, lake)
	changed := writeJob(t, strings.Replace(toyJob, "range(6)", "range(7)", 1))
	_, err := Run(ctx, runOpts(changed, lake))
	var ue *UsageError
	if !errors.As(err, &ue) || ExitCode(err) != 2 || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), "--run") {
		t.Fatalf("changed job on an interrupted step: %v, want a usage error naming the hashes", err)
	}
	if after := lakeSnapshot(t, lake); !maps.Equal(before, after) {
		t.Errorf("the refused rerun changed the lake")
	}
	// The original job file finishes the step.
	if res, err := Run(ctx, runOpts(job, lake)); err != nil || res.FirstStep != 0 || res.Skipped != 3 {
		t.Fatalf("rerun with the original job: %+v %v", res, err)
	}
}

// runShards runs n shards of o concurrently (as a Slurm array would) and
// returns the first error.
func runShards(t *testing.T, o Options, n int) error {
	t.Helper()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		oi := o
		oi.Shard, oi.NumShards = i, n
		go func() {
			_, err := Run(context.Background(), oi)
			errs <- err
		}()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func TestShards(t *testing.T) {
	lake := t.TempDir()
	job := writeJob(t, toyJob)
	o := runOpts(job, lake)
	o.Steps = 2
	if err := runShards(t, o, 2); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, lake)
	// save and log_metrics run on shard 0 only; reward splits the rollouts.
	got := query(t, lake, `SELECT count(*), count(DISTINCT rollout_id) FROM rewards`)
	if got[0] != "12|12" {
		t.Errorf("rewards over both shards = %v, want 12 distinct", got)
	}
	parts := query(t, lake, `SELECT count(DISTINCT filename) FROM read_parquet('`+lake+`/rewards/**/*.parquet', filename = true)`)
	if parts[0] != "4" {
		t.Errorf("reward part files = %v, want 4", parts)
	}
	if got := query(t, lake, `SELECT count(*) FROM steps`); got[0] != "4" {
		t.Errorf("step markers = %v, want 4 (one per shard and step)", got)
	}
	// log_metrics on shard 0 saw both shards' rewards of the step.
	got = query(t, lake, `SELECT step, value FROM metrics WHERE name = 'accuracy' ORDER BY step`)
	if strings.Join(got, ",") != "0|0.3333333333333333,1|0.3333333333333333" {
		t.Errorf("metrics = %v", got)
	}
	// One step number per run: an unsharded runner continues at step 2.
	res, err := Run(context.Background(), runOpts(job, lake))
	if err != nil || res.FirstStep != 2 {
		t.Fatalf("unsharded after shards: %+v %v", res, err)
	}
}

// A shard that waits for one that never comes gives up after the wait
// timeout with a data error naming the missing shard.
func TestShardWaitTimeout(t *testing.T) {
	lake := t.TempDir()
	o := runOpts(writeJob(t, toyJob), lake)
	o.Shard, o.NumShards, o.WaitTimeout = 0, 2, 300*time.Millisecond
	_, err := Run(context.Background(), o)
	var de *DataError
	if !errors.As(err, &de) || ExitCode(err) != 3 || !strings.Contains(err.Error(), "shards 1 ") {
		t.Fatalf("err = %v, want a data error naming shard 1", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	lake := filepath.Join(t.TempDir(), "lake")
	o := runOpts(writeJob(t, toyJob), lake)
	o.DryRun = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Job.Stmts) != 5 || res.Job.Stmts[2].Stage == nil || res.Job.Stmts[0].Stage != nil {
		t.Errorf("job = %+v", res.Job.Stmts)
	}
	if _, err := os.Stat(lake); !os.IsNotExist(err) {
		t.Errorf("dry run created the lake: %v", err)
	}
}

func TestExecStage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		command string
		wantErr string
		rows    string
	}{
		{name: "copies input", command: `cp "$RLJOB_INPUT" "$RLJOB_OUTPUT"`, rows: "3"},
		{name: "env", command: `test "$RLJOB_RUN" = r && test "$RLJOB_STEP" = 0 && test "$RLJOB_SHARD" = 0 && cp "$RLJOB_INPUT" "$RLJOB_OUTPUT"`, rows: "3"},
		{name: "non-zero exit", command: `echo oops >&2; exit 3`, wantErr: "exec: command exited with status 3"},
		{name: "no output", command: `true`, wantErr: "wrote no file at $RLJOB_OUTPUT"},
		{name: "output not parquet", command: `echo hi > "$RLJOB_OUTPUT"`, wantErr: "cannot read the command's output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lake := t.TempDir()
			src := "CREATE TABLE t AS SELECT 'p' || i AS prompt_id, i FROM range(3) r(i);\n" +
				"CALL exec(input := 't', command := " + QuoteString(tc.command) + ", output := 'out');\n"
			_, err := Run(ctx, runOpts(writeJob(t, src), lake))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(filepath.Join(lake, "out")); !os.IsNotExist(serr) {
					t.Errorf("failed exec committed something")
				}
				mustVerify(t, lake)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := query(t, lake, "SELECT count(*) FROM out"); got[0] != tc.rows {
				t.Errorf("rows = %v", got)
			}
		})
	}
}

func TestUDFs(t *testing.T) {
	ctx := context.Background()
	e, err := rsql.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := RegisterUDFs(e); err != nil {
		t.Fatal(err)
	}
	var a, b string
	var eq bool
	var null any
	err = e.Conn().QueryRowContext(ctx, `SELECT extract_answer('so 3 + 4 = 7
#### 7', 'gsm8k'), extract_answer('x #### 1,234', 'gsm8k'), math_equal('7', '7'), extract_answer(NULL, 'gsm8k')`).Scan(&a, &b, &eq, &null)
	if err != nil {
		t.Fatal(err)
	}
	if a != "7" || b != "1234" || !eq || null != nil {
		t.Errorf("got %q %q %v %v", a, b, eq, null)
	}
}

// Expression arguments: their grammar is checked by --dry-run, their value
// when the call runs (then typed like a literal), and when := decides.
func TestExpressionArguments(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	o := runOpts(writeJob(t, "CALL log_metrics(query := 'SELECT 1 AS value', when := getvariable('step') > );\n"), lake)
	o.DryRun = true
	_, err := Run(ctx, o)
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "job.sql:1:48: argument when of stage log_metrics") {
		t.Fatalf("bad expression: %v", err)
	}
	job := `CREATE TABLE m AS SELECT 'k' AS name, 2.5 AS value;
CALL log_metrics(query := 'SELECT name, value * ' || getvariable('mult') || ' AS value FROM m', when := getvariable('mult') > 0);
`
	o = runOpts(writeJob(t, job), lake)
	o.Sets = []string{"mult=4"}
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Sets = []string{"mult=0"}
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	got := query(t, lake, `SELECT c.step, c.status, m.value FROM calls c LEFT JOIN metrics m USING (run, step) ORDER BY 1`)
	if strings.Join(got, ",") != "0|done|10,1|skipped|NULL" {
		t.Errorf("calls and metrics = %v", got)
	}
	// A value of the wrong type is named with its argument.
	o = runOpts(writeJob(t, "CALL reward(verifier := 'ex' || 'act', rollouts := 42 + 1);\n"), lake)
	_, err = Run(ctx, o)
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "argument rollouts of stage reward: want a table name, got int 43") {
		t.Errorf("wrong type: %v", err)
	}
}

// exec runs its command in the job file's folder: a script next to the job
// is found whatever the current directory.
func TestExecRunsInJobFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gen.sh"), []byte("echo ok > ran.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(dir, "job.sql")
	src := `CALL exec(command := 'sh gen.sh', output := 'x');`
	if err := os.WriteFile(job, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _ = Run(context.Background(), runOpts(job, t.TempDir())) // fails later: no Parquet output
	if _, err := os.Stat(filepath.Join(dir, "ran.txt")); err != nil {
		t.Errorf("the command did not run in the job file's folder: %v", err)
	}
}

// --compact-every N: shard 0 compacts the run's complete steps after every
// N-th step; the views then read the segment, with the same rows.
func TestCompactEvery(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	o := runOpts(writeJob(t, toyJob), lake)
	o.Steps, o.CompactEvery = 12, 10
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(lake, "_compacted", "rollouts", "*", "0-9"))
	if len(segs) != 1 {
		t.Fatalf("segments of rollouts steps 0-9: %v, want one", segs)
	}
	got := query(t, lake, `SELECT count(*), count(DISTINCT rollout_id), sum(correct::INT) FROM rewards`)
	if got[0] != "72|72|24" {
		t.Errorf("rewards after compaction = %v, want 72 rows once each", got)
	}
	mustVerify(t, lake)
}
