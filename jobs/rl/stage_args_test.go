package rl

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
)

// TestPolicyFromAnotherRun: policy := 'run=X' and 'run=X/step=K' work on
// rollout, train and sft as on logprobs and init_policy; rollout writes
// another table with output := and any tag; bad values are usage errors
// naming the argument, with nothing committed.
func TestPolicyFromAnotherRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init_policy and a GRPO step")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	mustRun(t, lake, config, grpoJob, runOpt{}) // run r: steps 0 and 1
	mustRun(t, lake, config, initJob, runOpt{run: "b"})
	const other = `CREATE OR REPLACE TABLE b AS SELECT 'p' || i AS prompt_id, CAST(i AS VARCHAR) || '+1=' AS prompt, CAST(i + 1 AS VARCHAR) AS answer FROM range(3) t(i);
CALL rollout(prompts := 'SELECT * FROM b WHERE prompt_id <> ''p2''', policy := 'run=r/step=0', n := 2, max_new_tokens := 3, tag := 'baseline_r0', output := 'eval_rollouts');
CALL rollout(prompts := 'b', policy := 'run=r', n := 2, max_new_tokens := 3, tag := 'eval');
CALL reward(rollouts := 'SELECT * FROM this_step_rollouts WHERE tag = ''eval''', verifier := 'exact');
CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored;
CALL train(data := 'SELECT *, 1.0 AS advantage FROM this_step', policy := 'run=r/step=1', ref := 'run=r/step=0', kl_coef := 0.01);
CALL sft(data := 'SELECT prompt, answer AS completion FROM b', policy := 'run=r');
`
	mustRun(t, lake, config, other, runOpt{run: "b"})
	if got := query(t, lake, "SELECT count(*), min(tag), count(policy_step) FROM eval_rollouts WHERE run = 'b'"); !equal(got, []string{"4|baseline_r0|0"}) {
		t.Errorf("eval_rollouts = %v, want 4 rows tagged baseline_r0 with a NULL policy_step (another run's checkpoint)", got)
	}
	if got := query(t, lake, "SELECT count(*), min(tag) FROM rollouts WHERE run = 'b'"); !equal(got, []string{"6|eval"}) {
		t.Errorf("rollouts of run b = %v", got)
	}
	if got := query(t, lake, "SELECT count(*) FROM rewards WHERE run = 'b'"); !equal(got, []string{"6"}) {
		t.Errorf("rewards of run b = %v", got)
	}
	for _, tc := range []struct{ name, job, want string }{
		{"own run", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b', policy := 'run=c');`, "that is this run"},
		{"no such run", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b', policy := 'run=nosuch');`, "no such checkpoint"},
		{"bad step", `CALL sft(data := 'SELECT ''1'' AS prompt, ''2'' AS completion', policy := 'run=r/step=x');`, "bad step"},
		{"step not there", `CALL rollout(prompts := 'SELECT ''a'' AS prompt_id, ''1+1='' AS prompt', policy := 'run=r/step=9');`, "no such checkpoint"},
		{"bad output", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b', output := 'Bad-Name');`, "cannot write lake table"},
		{"empty tag", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b', tag := '');`, "tag must be a non-empty one-line label"},
	} {
		before := lakeFiles(t, lake)
		_, err := runJob(t, lake, config, tc.job, runOpt{run: "c"})
		if jobs.ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (exit %d), want a usage error with %q", tc.name, err, jobs.ExitCode(err), tc.want)
		}
		for p := range lakeFiles(t, lake) {
			if !before[p] {
				t.Errorf("%s: wrote %s", tc.name, p)
			}
		}
	}
}

// lakeFiles lists the files of the lake outside _staging and _locks.
func lakeFiles(t *testing.T, lake string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(lake, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(lake, p)
		if d.IsDir() && (rel == "_staging" || rel == "_locks") {
			return fs.SkipDir
		}
		if !d.IsDir() {
			out[rel] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
