package rl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogprobsStage: logprobs under the checkpoint that sampled a step's
// rollouts equals their stored logprobs bit for bit; under another
// checkpoint it differs; a missing policy or a tokens
// column of the wrong type is a clear error and commits nothing.
func TestLogprobsStage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 2 GRPO steps of a tiny model")
	}
	lake, config := grpoRun(t, 2, 11)
	job := `
CALL logprobs(data := 'SELECT * FROM rollouts WHERE step = 1', policy := 'step=0', output := 'relp');
CALL logprobs(data := 'SELECT * FROM rollouts WHERE step = 1', policy := 'step=1', output := 'relp_next');
`
	mustRun(t, lake, config, job, runOpt{})
	if got := query(t, lake, `SELECT count(*), count(*) FILTER (WHERE l.logprobs = r.logprobs), count(*) FILTER (WHERE len(l.logprobs) = len(r.completion_tokens))
FROM relp l JOIN rollouts r USING (rollout_id) WHERE r.step = 1`); !equal(got, []string{"24|24|24"}) {
		t.Errorf("relp rows, rows equal to the rollouts' logprobs, rows of the right length = %v, want 24|24|24", got)
	}
	if got := query(t, lake, `SELECT count(*), count(*) FILTER (WHERE l.logprobs = r.logprobs), min(l.policy_step), max(l.policy_step)
FROM relp_next l JOIN rollouts r USING (rollout_id) WHERE r.step = 1`); len(got) != 1 || !strings.HasPrefix(got[0], "24|") || strings.HasPrefix(got[0], "24|24|") || !strings.HasSuffix(got[0], "|1|1") {
		t.Errorf("under the next checkpoint: rows, rows equal, policy steps = %v, want 24 rows, not all equal, step 1", got)
	}

	for _, tc := range []struct{ name, job, want string }{
		{"missing policy", `CALL logprobs(data := 'rollouts', policy := 'step=99', output := 'bad_policy');`, "'step=99'"},
		{"tokens as text", `CALL logprobs(data := 'SELECT rollout_id, CAST(prompt_tokens AS VARCHAR) AS prompt_tokens, completion_tokens FROM rollouts', output := 'bad_type');`, "want a list of token ids"},
		{"tokens as floats", `CALL logprobs(data := 'SELECT rollout_id, prompt_tokens, CAST(completion_tokens AS DOUBLE[]) AS completion_tokens FROM rollouts', output := 'bad_type');`, "want a list of token ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runJob(t, lake, config, tc.job, runOpt{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			for _, table := range []string{"bad_policy", "bad_type"} {
				if _, err := os.Stat(filepath.Join(lake, table)); err == nil {
					entries, _ := filepath.Glob(filepath.Join(lake, table, "*", "*", "*", "*.parquet"))
					if len(entries) > 0 {
						t.Errorf("%s: committed files %v", table, entries)
					}
				}
			}
		})
	}
}
