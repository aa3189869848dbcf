package rl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
)

// Issue 7: CALL rollout(n := 1000000000) died with Go's "fatal error: out
// of memory". The stage estimates its rows' memory before allocating them
// and refuses with a usage error (exit 2) naming the argument and the
// estimate; nothing is committed.
func TestRolloutRefusesWhatCannotFit(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	_, err := runJob(t, lake, config, `CREATE TABLE b AS SELECT 'p' || i AS prompt_id, '1+1=' AS prompt FROM range(6) t(i);
CALL rollout(prompts := 'b', n := 1000000000, max_new_tokens := 6);`, runOpt{})
	var ue *jobs.UsageError
	if !errors.As(err, &ue) || jobs.ExitCode(err) != 2 {
		t.Fatalf("err = %T %v, want a usage error (exit 2)", err, err)
	}
	for _, w := range []string{"job.sql:2:30", "n := 1000000000 samples × 6 prompts = 6000000000 completions", "of memory, more than the", "lower n or max_new_tokens"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if _, err := os.Stat(filepath.Join(lake, "rollouts")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rollouts committed: %v", err)
	}
}

// Issue 7: a NaN in a train row's logprobs exited 1 with "loss: loss: …
// old_logp is NaN". It is a data error (exit 3) naming table, column and
// row, like a NaN advantage.
func TestTrainRejectsNonFiniteInputs(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	cases := []struct {
		name, data string
		column     string
		want       []string
	}{
		{"NaN logprob", `SELECT 'r' || i AS rollout_id, [1, 5]::INTEGER[] AS prompt_tokens, [6, 7]::INTEGER[] AS completion_tokens,
  CASE WHEN i = 1 THEN [-1.0, 'NaN'::FLOAT]::FLOAT[] ELSE [-1.0, -2.0]::FLOAT[] END AS logprobs, 1.0 AS advantage FROM range(3) t(i)`,
			"logprobs", []string{"train: data d row 1 (rollout_id \"r1\"): logprobs[1] is NaN", "isfinite"}},
		{"infinite logprob", `SELECT [1, 5]::INTEGER[] AS prompt_tokens, [6]::INTEGER[] AS completion_tokens, ['-inf']::FLOAT[] AS logprobs, 1.0 AS advantage`,
			"logprobs", []string{"train: data d row 0: logprobs[0] is -Inf"}},
		{"NaN advantage", `SELECT 'r0' AS rollout_id, [1, 5]::INTEGER[] AS prompt_tokens, [6]::INTEGER[] AS completion_tokens, [-1.0]::FLOAT[] AS logprobs, 'NaN'::DOUBLE AS advantage`,
			"advantage", []string{"train: data d row 0 (rollout_id \"r0\"): advantage is NULL or not finite"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runJob(t, lake, config, "CREATE TABLE d AS "+tc.data+";\nCALL train(data := 'd');\n", runOpt{})
			var de *jobs.DataError
			if !errors.As(err, &de) || jobs.ExitCode(err) != 3 {
				t.Fatalf("err = %T %v, want a data error (exit 3)", err, err)
			}
			if de.Table != "d" || de.Column != tc.column {
				t.Errorf("DataError names table %q column %q, want d, %s", de.Table, de.Column, tc.column)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
