package rl

import (
	"runtime"
	"testing"
)

// TestStagesReleaseSchedulerP: the logprobs, train and sft stages hold
// kernels.ReserveSchedulerP for their call only — after each, and after a
// train call that fails inside its Run, GOMAXPROCS is what it was.
func TestStagesReleaseSchedulerP(t *testing.T) {
	t.Setenv("RLJOB_SPARE_P", "")
	procs := runtime.GOMAXPROCS(0)
	check := func(after string) {
		t.Helper()
		if p := runtime.GOMAXPROCS(0); p != procs {
			t.Errorf("after %s: GOMAXPROCS %d, want %d (the spare P not released)", after, p, procs)
			runtime.GOMAXPROCS(procs)
		}
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	mustRun(t, lake, config, `
CREATE OR REPLACE TABLE d AS SELECT * FROM (VALUES
  ('a', [1, 2], [3, 4, 5], 1.0), ('b', [1, 3], [8, 9], -1.0)) t(rollout_id, prompt_tokens, completion_tokens, advantage);
CALL logprobs(data := 'd', output := 'lp', temperature := 1.0);
CREATE OR REPLACE TABLE td AS SELECT d.*, l.logprobs FROM d JOIN this_step_lp l USING (rollout_id);
CALL train(data := 'td', lr := 1e-2, temperature := 1.0);
CALL sft(data := 'SELECT ''1+1='' AS prompt, ''2'' AS completion', lr := 1e-2, epochs := 1, batch_size := 1);
`, runOpt{steps: 1})
	check("logprobs, train and sft")
	if _, err := runJob(t, lake, config, `CALL train(data := 'td', lr := 1e-2, loss_agg := 'seq-mean-token-sum-norm');`, runOpt{steps: 2}); err == nil {
		t.Fatal("train with seq-mean-token-sum-norm and no max_new_tokens succeeded")
	}
	check("a failed train call")
}
