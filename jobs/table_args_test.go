package jobs

import (
	"context"
	"strings"
	"testing"
)

// TestTableArgumentsTakeQueries: exec's input, save's source and reward's
// rollouts take a query as rollout's prompts and train's data do; a query
// that does not bind is a usage error naming the argument, nothing
// committed.
func TestTableArgumentsTakeQueries(t *testing.T) {
	ctx := context.Background()
	lake := t.TempDir()
	src := `CREATE TABLE t AS SELECT 'p' || i AS prompt_id, i FROM range(3) r(i);
CALL exec(input := 'SELECT * FROM t WHERE i > 0', command := 'cp "$RLJOB_INPUT" "$RLJOB_OUTPUT"', output := 'out');
CALL save(source := 'SELECT prompt_id, i * 10 AS j FROM t;', output := 'saved');
CALL save(query := 'SELECT ''r'' || i AS rollout_id, ''p'' || i AS prompt_id, CAST(i AS VARCHAR) AS completion, ''1'' AS answer FROM range(3) r(i)', output := 'rollouts');
CALL reward(rollouts := 'FROM this_step_rollouts WHERE completion <> ''0''', verifier := 'exact');
`
	if _, err := Run(ctx, runOpts(writeJob(t, src), lake)); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		"SELECT count(*), min(i) FROM out":               "2|1",
		"SELECT sum(j) FROM saved":                       "30",
		"SELECT count(*), sum(reward::INT) FROM rewards": "2|1",
	} {
		if got := query(t, lake, q); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %s", q, got, want)
		}
	}
	for _, bad := range []string{
		"CALL exec(input := 'SELECT nosuch FROM t', command := 'true', output := 'x');",
		"CALL save(source := 'SELECT nosuch FROM t', output := 'x');",
		"CALL reward(rollouts := 'SELECT nosuch FROM t');",
	} {
		lake := t.TempDir()
		_, err := Run(ctx, runOpts(writeJob(t, "CREATE TABLE t AS SELECT 1 AS i;\n"+bad+"\n"), lake))
		if ExitCode(err) != 2 || !strings.Contains(err.Error(), "nosuch") || !strings.Contains(err.Error(), "job.sql:2:") {
			t.Errorf("%s: %v (exit %d), want a usage error at job.sql:2 naming nosuch", bad, err, ExitCode(err))
		}
		if snap := lakeSnapshot(t, lake); len(snap) != 0 {
			t.Errorf("%s committed %v", bad, snap)
		}
	}
}
