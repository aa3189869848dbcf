package jobs

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loopJob saves one row per FOR iteration (reading the loop variable), then
// refills with a WHILE loop until this step holds 7 rows: 3 + 2 + 2.
const loopJob = `
CREATE OR REPLACE TABLE seen AS SELECT 0 AS n;
FOR i IN 1..3 DO
  CALL save(query := 'SELECT ''for'' AS kind, getvariable(''i'') AS i', output := 'items');
  CREATE OR REPLACE TABLE seen AS SELECT n + 1 AS n FROM seen;
END FOR;
WHILE (SELECT count(*) FROM this_step_items) < 7 MAX 5 DO
  CALL save(query := 'SELECT ''while'' AS kind, r AS i FROM range(2) t(r)', output := 'items');
END WHILE;
CALL log_metrics(query := 'SELECT ''rows'' AS name, count(*)::DOUBLE AS value FROM this_step_items UNION ALL SELECT ''seen'', n FROM seen');
`

func TestLoopsRun(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	job := writeJob(t, loopJob)
	res, err := Run(ctx, runOpts(job, lake))
	if err != nil {
		t.Fatal(err)
	}
	// Slots: 0 CREATE, FOR header 1, body 2 statements × MAX 3 (2..7), END 8,
	// WHILE header 9, body 1 × MAX 5 (10..14), END 15, log_metrics 16.
	if res.Job.Slots != 17 {
		t.Errorf("slots = %d, want 17", res.Job.Slots)
	}
	got := query(t, lake, `SELECT kind, i FROM items ORDER BY kind, i`)
	want := []string{"for|1", "for|2", "for|3", "while|0", "while|0", "while|1", "while|1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("items (kind|i) = %v, want %v", got, want)
	}
	got = query(t, lake, `SELECT call, stage, status FROM calls ORDER BY call`)
	want = []string{"2|save|done", "4|save|done", "6|save|done", "10|save|done", "11|save|done", "16|log_metrics|done"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("calls = %v, want %v", got, want)
	}
	if got := query(t, lake, `SELECT name, value FROM metrics ORDER BY name`); strings.Join(got, " ") != "rows|7 seen|3" {
		t.Errorf("metrics = %v", got)
	}
}

// A step killed inside a loop resumes exactly: the calls committed (the
// first two FOR iterations, the first WHILE round) are skipped, the rest
// run, and the lake equals an uninterrupted run's.
func TestLoopResumeSkipsCommittedIterations(t *testing.T) {
	res := crashAndResume(t, loopJob, []string{"steps", "metrics", "items/run=r/step=0/part-6-0", "items/run=r/step=0/part-11-0",
		"calls/run=r/step=0/part-6-0", "calls/run=r/step=0/part-11-0", "calls/run=r/step=0/part-16-0"},
		`SELECT kind, i FROM items ORDER BY ALL`, `SELECT call, stage, status FROM calls ORDER BY ALL`, `SELECT name, value FROM metrics ORDER BY ALL`)
	if res.Skipped != 3 {
		t.Errorf("rerun skipped %d calls, want 3 (FOR iterations 1-2, WHILE round 1)", res.Skipped)
	}
}

// when := inside a loop: a false when is recorded as skipped at the call's
// number in that iteration, and a rerun skips it again.
func TestLoopWhenIsPerIteration(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	job := writeJob(t, `FOR k IN 1..4 DO
  CALL save(query := 'SELECT getvariable(''k'') AS k', output := 'odd', when := getvariable('k') % 2 = 1);
END FOR;`)
	if _, err := Run(ctx, runOpts(job, lake)); err != nil {
		t.Fatal(err)
	}
	got := query(t, lake, `SELECT call, status FROM calls ORDER BY call`)
	if strings.Join(got, " ") != "1|done 2|skipped 3|done 4|skipped" {
		t.Errorf("calls = %v", got)
	}
	if got := query(t, lake, `SELECT k FROM odd ORDER BY k`); strings.Join(got, " ") != "1 3" {
		t.Errorf("odd = %v", got)
	}
}

// A FOR range given by expressions is evaluated when the loop starts; an
// empty range runs nothing; nested loops number their calls apart.
func TestLoopNestedAndExpressionBounds(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	job := writeJob(t, `FOR a IN 1..getvariable('n') MAX 4 DO
  FOR b IN getvariable('a')..2 DO
    CALL save(query := 'SELECT getvariable(''a'') AS a, getvariable(''b'') AS b', output := 'pairs');
  END FOR;
END FOR;
FOR z IN 1..0 DO CALL save(query := 'SELECT 1 AS z', output := 'never'); END FOR;`)
	o := runOpts(job, lake)
	o.Sets = []string{"n=3"}
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	got := query(t, lake, `SELECT a, b FROM pairs ORDER BY a, b`)
	if strings.Join(got, " ") != "1|1 1|2 2|2" {
		t.Errorf("pairs = %v, want 1|1 1|2 2|2", got)
	}
	if _, err := os.Stat(filepath.Join(lake, "never")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FOR z IN 1..0 ran its body")
	}
}

// Exceeding a loop's maximum, or a bad condition or bound, is a usage error
// (exit 2) naming the loop's file:line:col; the calls already committed stay.
func TestLoopRunErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"while exceeds max", "SELECT 1;\nWHILE true MAX 3 DO\n  CALL save(query := 'SELECT 1 AS x', output := 'xs');\nEND WHILE;",
			"job.sql:2:1: WHILE loop ran its MAX 3 iterations and its condition true is still true"},
		{"while default max", "WHILE getvariable('step') = 0 DO SELECT 1; END WHILE;", "ran its MAX 100 iterations"},
		{"while condition not boolean", "WHILE 1 + 1 DO SELECT 1; END WHILE;", "job.sql:1:7: WHILE condition 1 + 1 is a INTEGER, not a boolean"},
		{"for range longer than max", "FOR i IN 1..getvariable('n') MAX 2 DO SELECT 1; END FOR;", "job.sql:1:1: FOR i IN 1..5 runs 5 iterations, more than its MAX 2"},
		{"for bound not an integer", "FOR i IN 1..'x' DO SELECT 1; END FOR;", "job.sql:1:13: FOR i: bound 'x' is a VARCHAR, not an integer"},
		{"for bound fails", "FOR i IN 1..(SELECT nope FROM nowhere) DO SELECT 1; END FOR;", "job.sql:1:13: cannot evaluate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lake := t.TempDir()
			o := runOpts(writeJob(t, tc.src), lake)
			if strings.Contains(tc.src, "getvariable('n')") {
				o.Sets = []string{"n=5"}
			}
			_, err := Run(context.Background(), o)
			if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got exit %d: %v\nwant exit 2 and %q", ExitCode(err), err, tc.want)
			}
			mustVerify(t, lake)
		})
	}
}

// Bad loop syntax is found when the job compiles, naming file:line:col.
func TestLoopCompileErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no DO", "WHILE true\nSELECT 1;", "job.sql:2:9: WHILE needs DO after its condition"},
		{"no END", "SELECT 1;\nWHILE true DO\n  SELECT 1;", "job.sql:2:1: WHILE has no END WHILE in"},
		{"END without loop", "SELECT 1;\nEND FOR;", "job.sql:2:1: END FOR without a loop to end"},
		{"mismatched END", "FOR i IN 1..2 DO\nSELECT 1;\nEND WHILE;", "job.sql:3:1: END WHILE ends the FOR loop at"},
		{"empty body", "WHILE true DO\nEND WHILE;", "job.sql:1:1: WHILE loop has no statements"},
		{"MAX zero", "WHILE true MAX 0 DO SELECT 1; END WHILE;", "job.sql:1:16: MAX takes a positive integer"},
		{"MAX without number", "WHILE true MAX DO SELECT 1; END WHILE;", "job.sql:1:16: MAX takes a positive integer"},
		{"no condition", "WHILE DO SELECT 1; END WHILE;", "job.sql:1:7: WHILE needs a condition"},
		{"FOR without IN", "FOR i 1..2 DO SELECT 1; END FOR;", "job.sql:1:7: FOR i needs IN"},
		{"FOR without range", "FOR i IN 3 DO SELECT 1; END FOR;", "job.sql:1:10: FOR needs a range"},
		{"FOR reserved variable", "FOR step IN 1..2 DO SELECT 1; END FOR;", `job.sql:1:1: FOR step: "step" is set by the runner`},
		{"FOR literal range over MAX", "FOR i IN 1..9 MAX 3 DO SELECT 1; END FOR;", "job.sql:1:19: FOR i IN 1..9 runs 9 iterations, more than its MAX 3"},
		{"END missing semicolon", "FOR i IN 1..2 DO SELECT 1; END FOR\nSELECT 2;", "job.sql:2:1: END FOR ends a statement"},
		{"loop too large", "FOR i IN 1..1000 DO FOR j IN 1..1000 DO SELECT 1; SELECT 2; END FOR; END FOR;", "FOR loop spans"},
		{"bad condition grammar", "WHILE 1 + DO SELECT 1; END WHILE;", "job.sql:1:7: WHILE: 1 + is not a valid expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := runOpts(writeJob(t, tc.src), t.TempDir())
			o.DryRun = true
			_, err := Run(context.Background(), o)
			if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got exit %d: %v\nwant exit 2 and %q", ExitCode(err), err, tc.want)
			}
		})
	}
}

// INCLUDE splices a file's statements in, relative to the including file;
// the job identity covers the included bytes; a missing file and a cycle
// are errors at the INCLUDE.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("core/step.sql", "CALL save(query := 'SELECT getvariable(''x'') AS x', output := 'xs');\nINCLUDE 'metrics.sql';\n")
	write("core/metrics.sql", "CALL log_metrics(query := 'SELECT ''n'' AS name, count(*)::DOUBLE AS value FROM this_step_xs');\n")
	main := write("job.sql", "SET VARIABLE x = 7;\nFOR i IN 1..2 DO\n  INCLUDE 'core/step.sql';\nEND FOR;\n")
	ctx := context.Background()
	lake := t.TempDir()
	res, err := Run(ctx, runOpts(main, lake))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Job.Includes) != 2 || !strings.HasSuffix(res.Job.Includes[1], filepath.Join("core", "metrics.sql")) {
		t.Errorf("includes = %v", res.Job.Includes)
	}
	if s := res.Job.Stmts[3]; s.Pos.File != filepath.Join(dir, "core", "metrics.sql") || s.Pos.Line != 1 {
		t.Errorf("included statement at %s", s.Pos)
	}
	if got := query(t, lake, `SELECT step, name, value FROM metrics ORDER BY value`); strings.Join(got, " ") != "0|n|1 0|n|2" {
		t.Errorf("metrics = %v", got)
	}
	// The identity changes with an included file's bytes.
	sha := res.Job.SHA256
	write("core/metrics.sql", "CALL log_metrics(query := 'SELECT ''n'' AS name, 2.0 AS value');\n")
	job2, err := LoadJob(main, nil)
	if err != nil {
		t.Fatal(err)
	}
	if job2.SHA256 == sha {
		t.Errorf("changing an included file left the job's sha256 unchanged")
	}

	cases := []struct{ name, src, want string }{
		{"missing", "SELECT 1;\n  INCLUDE 'nope.sql';", `bad.sql:2:3: INCLUDE "nope.sql": ` + filepath.Join(dir, "nope.sql") + " does not exist"},
		{"cycle", "INCLUDE 'cyc/a.sql';", "cyc/b.sql:2:1: include cycle: "},
		{"no file name", "INCLUDE core;", "bad.sql:1:9: INCLUDE takes one quoted file name"},
		{"loop open at the end of an included file", "INCLUDE 'open.sql';", "open.sql:1:1: WHILE has no END WHILE in"},
	}
	write("cyc/a.sql", "INCLUDE 'b.sql';")
	write("cyc/b.sql", "SELECT 1;\nINCLUDE 'a.sql';")
	write("open.sql", "WHILE true DO SELECT 1;")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := write("bad.sql", tc.src)
			before := lakeSnapshot(t, lake)
			_, err := Run(ctx, runOpts(bad, lake))
			if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got exit %d: %v\nwant exit 2 and %q", ExitCode(err), err, tc.want)
			}
			if !maps.Equal(before, lakeSnapshot(t, lake)) {
				t.Errorf("the lake changed")
			}
		})
	}
}

// Shards run a loop in lockstep: a sharded call in the body waits for every
// shard, so each shard's WHILE condition sees the same rows and the shards
// run the same iterations; the lake equals an unsharded run's.
func TestLoopsSharded(t *testing.T) {
	src := `CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, 'what is ' || i AS prompt, CAST(i AS VARCHAR) AS answer FROM range(6) t(i);
WHILE (SELECT count(*) FROM this_step_rewards) < 12 MAX 4 DO
  CREATE OR REPLACE TABLE samples AS
  SELECT prompt_id || '/' || (SELECT count(*) FROM this_step_rollouts) AS rollout_id, prompt_id, 0 AS sample_idx, prompt,
         CASE WHEN CAST(answer AS INT) % 3 = 0 THEN answer ELSE 'wrong' END AS completion, answer
  FROM batch;
  CALL save(source := 'samples', output := 'rollouts');
  CALL reward(verifier := 'exact');
END WHILE;
CALL log_metrics(query := 'SELECT ''rewards'' AS name, count(*)::DOUBLE AS value FROM this_step_rewards');`
	job := writeJob(t, src)
	one, two := t.TempDir(), t.TempDir()
	if _, err := Run(context.Background(), runOpts(job, one)); err != nil {
		t.Fatal(err)
	}
	if err := runShards(t, runOpts(job, two), 2); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, two)
	for _, q := range []string{`SELECT rollout_id, reward FROM rewards ORDER BY ALL`, `SELECT name, value FROM metrics`, `SELECT DISTINCT call, stage, status FROM calls ORDER BY call`} {
		if a, b := query(t, one, q), query(t, two, q); strings.Join(a, " ") != strings.Join(b, " ") {
			t.Errorf("%s:\nunsharded %v\nsharded   %v", q, a, b)
		}
	}
	if got := query(t, two, `SELECT count(*) FROM calls WHERE stage = 'reward'`); got[0] != "4" {
		t.Errorf("reward call records = %v, want 4 (2 rounds × 2 shards)", got)
	}
}
