package rl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogprobsPolicyForms: policy := 'ref' is the run's first checkpoint
// (init_policy's at step 0), so at step 2 it gives the step-1 rollouts'
// logprobs (sampled by step 0's policy) bit for bit, with policy_step 0;
// 'run=r/step=K' in another run is run r's checkpoint K (policy_step NULL):
// step 0 again equals the step-1 rollouts, step 1 equals this run's
// 'step=1'-scored copy; 'run=r' is r's newest complete step (2). A missing
// step, this run's own name and a run with no checkpoint are errors that
// commit nothing.
func TestLogprobsPolicyForms(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 2 GRPO steps of a tiny model")
	}
	lake, config := grpoRun(t, 2, 11)
	// step 3 of run r scores step 1's rollouts under 'ref' and 'step=1'
	mustRun(t, lake, config, `
CALL logprobs(data := 'SELECT * FROM rollouts WHERE step = 1', policy := 'ref', output := 'lp_ref');
CALL logprobs(data := 'SELECT * FROM rollouts WHERE step = 1', policy := 'step=1', output := 'lp_step1');
`, runOpt{})
	const equalRows = `SELECT count(*), count(*) FILTER (WHERE l.logprobs = r.logprobs), min(coalesce(l.policy_step, -1)), max(coalesce(l.policy_step, -1))
FROM %s l JOIN rollouts r USING (rollout_id) WHERE r.run = 'r' AND r.step = 1 AND l.run = '%s'`
	check := func(what, table, run, want string) {
		t.Helper()
		if got := query(t, lake, strings.NewReplacer("%s", table).Replace(strings.Replace(equalRows, "'%s'", "'"+run+"'", 1))); !equal(got, []string{want}) {
			t.Errorf("%s: rows, rows equal to the step-1 rollouts' logprobs, policy steps = %v, want %s", what, got, want)
		}
	}
	check("'ref'", "lp_ref", "r", "24|24|0|0")

	// Another run of the same lake reads run r's checkpoints at its complete steps.
	mustRun(t, lake, config, `
CALL logprobs(data := 'SELECT * FROM rollouts WHERE run = ''r'' AND step = 1', policy := 'run=r/step=0', output := 'lp_r0');
CALL logprobs(data := 'SELECT * FROM rollouts WHERE run = ''r'' AND step = 1', policy := 'run=r/step=1', output := 'lp_r1');
CALL logprobs(data := 'SELECT * FROM rollouts WHERE run = ''r'' AND step = 1', policy := 'run=r', output := 'lp_rlatest');
`, runOpt{run: "q"})
	check("'run=r/step=0'", "lp_r0", "q", "24|24|-1|-1")
	if got := query(t, lake, `SELECT count(*), count(*) FILTER (WHERE a.logprobs = b.logprobs), count(*) FILTER (WHERE a.logprobs = r.logprobs)
FROM lp_r1 a JOIN lp_step1 b USING (rollout_id) JOIN rollouts r USING (rollout_id) WHERE a.run = 'q' AND b.run = 'r' AND r.run = 'r'`); len(got) != 1 || !strings.HasPrefix(got[0], "24|24|") || strings.HasSuffix(got[0], "|24") {
		t.Errorf("'run=r/step=1' against this run's 'step=1': rows, equal, equal to the rollouts = %v, want 24|24|<24", got)
	}
	// run r's newest complete step is 2, whose policy differs from steps 0 and 1
	if got := query(t, lake, `SELECT count(*), count(*) FILTER (WHERE a.logprobs = b.logprobs)
FROM lp_rlatest a JOIN lp_step1 b USING (rollout_id) WHERE a.run = 'q' AND b.run = 'r'`); len(got) != 1 || !strings.HasPrefix(got[0], "24|") || got[0] == "24|24" {
		t.Errorf("'run=r' (step 2) against 'step=1': rows, equal = %v, want 24 rows, not all equal", got)
	}

	for _, tc := range []struct{ name, run, policy, want string }{
		{"step not complete", "q2", "run=r/step=7", `run "r" has no such checkpoint in a complete step`},
		{"no such run", "q2", "run=nobody", `run "nobody" has no such checkpoint`},
		{"bad step", "q2", "run=r/7", "bad step"},
		{"own run", "r", "run=r/step=0", "that is this run"},
		{"ref before any checkpoint", "q3", "ref", `run "q3" has no checkpoint`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := `CALL logprobs(data := 'SELECT * FROM rollouts WHERE run = ''r'' AND step = 1', policy := '` + tc.policy + `', output := 'lp_bad');`
			_, err := runJob(t, lake, config, job, runOpt{run: tc.run})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if files, _ := filepath.Glob(filepath.Join(lake, "lp_bad", "*", "*", "*", "*.parquet")); len(files) > 0 {
				t.Errorf("committed %v", files)
			}
		})
	}
}

// TestLogprobsSharded: two shards run concurrently (they wait for each
// other at every step) and together write the same rows as one unsharded
// call, each shard its own part, and both equal the rollouts' logprobs.
func TestLogprobsSharded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 1 GRPO step of a tiny model")
	}
	lake, config := grpoRun(t, 1, 12)
	job := `CALL logprobs(data := 'SELECT * FROM rollouts WHERE run = ''r'' AND step = 1', policy := 'run=r/step=0', output := 'lp');`
	mustRun(t, lake, config, job, runOpt{run: "one"})
	mustRunShards(t, lake, config, job, runOpt{run: "two"}, 2)
	if got := query(t, lake, `SELECT count(*), count(*) FILTER (WHERE a.logprobs = b.logprobs), count(*) FILTER (WHERE a.logprobs = r.logprobs)
FROM lp a JOIN lp b USING (rollout_id) JOIN rollouts r USING (rollout_id) WHERE a.run = 'one' AND b.run = 'two' AND r.run = 'r' AND r.step = 1`); !equal(got, []string{"24|24|24"}) {
		t.Errorf("unsharded vs 2 shards vs rollouts: rows, equal, equal to the rollouts = %v, want 24|24|24", got)
	}
	if got := query(t, lake, `SELECT count(*), count(DISTINCT rollout_id) FROM lp WHERE run = 'two'`); !equal(got, []string{"24|24"}) {
		t.Errorf("2 shards: rows, distinct rollout_ids = %v, want 24|24", got)
	}
	var parts []string
	filepath.WalkDir(filepath.Join(lake, "lp", "run=two"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			parts = append(parts, p)
		}
		return nil
	})
	if len(parts) != 2 {
		t.Errorf("2 shards wrote parts %v, want one each", parts)
	}
}
