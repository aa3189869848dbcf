package rl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/jobs/env"
)

// episodeJob is one GRPO step whose rollouts are episodes with a SQL
// environment: each turn ends at '+' or after 5 tokens; the observation is
// '=' then the turn's length mod 10 then '+' (3 tokens), with the turn's
// length as its reward; max_turns 3 and max_new_tokens 30 bound it. Then
// logprobs recomputes the rows under the same policy, and train updates.
const episodeJob = `
CREATE OR REPLACE MACRO obs(prompt_id, turn, text, finish, transcript) AS
  {'observation': '=' || CAST(length(text) % 10 AS VARCHAR) || '+', 'reward': CAST(length(text) AS DOUBLE), 'done': false};
CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, CAST(i % 5 AS VARCHAR) || '+' || CAST(i % 4 AS VARCHAR) || '=' AS prompt,
       CAST(i % 5 + i % 4 AS VARCHAR) AS answer
FROM range(4) t(i);
CALL rollout(prompts := 'batch', n := 3, max_new_tokens := 30, temperature := 1.0,
             env := 'sql:obs', max_turns := 3, max_turn_tokens := 5, stop := '+');
CALL logprobs(data := 'this_step_rollouts', policy := 'latest', output := 'recomputed');
CALL reward(verifier := 'regex', pattern := '^(.)');
CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step_scored');
CALL train(data := 'train_batch', lr := 1e-2);
`

// TestEpisodeRollout: a GRPO step on episodes writes rows whose
// policy_mask, logprobs and turn_offsets agree with the turns table
// (observation tokens have mask false and logprob 0, one turns row per
// turn, observation tokens counted there); logprobs recomputes the rows
// bit for bit (0 at observation tokens); train's first ratio is exactly 1
// (actor/first_max_abs_log_ratio = 0); and a second run with the seed
// writes the same rows.
func TestEpisodeRollout(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	mustRun(t, lake, config, episodeJob, runOpt{steps: 1})
	checks := map[string]string{
		"mask length":           `SELECT count(*) FROM rollouts WHERE len(policy_mask) != len(completion_tokens) OR len(logprobs) != len(completion_tokens)`,
		"observation logprob 0": `SELECT count(*) FROM rollouts WHERE len(list_filter(range(len(policy_mask)), i -> NOT policy_mask[i+1] AND logprobs[i+1] != 0)) > 0`,
		"turns per row": `SELECT count(*) FROM rollouts r JOIN (SELECT rollout_id, count(*) AS n, sum(observation_tokens) AS o, sum(reward) AS rw FROM turns GROUP BY 1) t USING (rollout_id)
			WHERE r.num_turns != t.n OR len(r.turn_offsets) != least(t.n, 3) OR len(list_filter(r.policy_mask, m -> NOT m)) != t.o OR r.env_reward != t.rw`,
		"rows without turns": `SELECT count(*) FROM rollouts WHERE rollout_id NOT IN (SELECT rollout_id FROM turns)`,
		"bad status":         `SELECT count(*) FROM turns WHERE status NOT IN ('continue', 'max_turns', 'length') OR (status = 'continue') != (observation_tokens = 3)`,
		"recomputed differs": `SELECT count(*) FROM rollouts r JOIN recomputed c USING (rollout_id) WHERE r.logprobs != c.logprobs`,
		"obs text":           `SELECT count(*) FROM turns WHERE status = 'continue' AND observation != '=' || CAST(length(text) % 10 AS VARCHAR) || '+'`,
	}
	for what, q := range checks {
		if got := query(t, lake, q); len(got) != 1 || got[0] != "0" {
			t.Errorf("%s: %v (%s)", what, got, q)
		}
	}
	multi := query(t, lake, `SELECT count(*) FROM rollouts WHERE num_turns > 1`)
	cont := query(t, lake, `SELECT count(*) FROM turns WHERE status = 'continue'`)
	if multi[0] == "0" || cont[0] == "0" {
		t.Fatalf("no multi-turn episode (%v, %v): the test does not exercise continuation", multi, cont)
	}
	if n := query(t, lake, `SELECT count(*) FROM recomputed`); n[0] != "12" {
		t.Fatalf("recomputed rows: %v", n)
	}
	m := metricsOf(t, lake, 1)
	if v, ok := m["actor/first_max_abs_log_ratio"]; !ok || v != 0 {
		t.Errorf("actor/first_max_abs_log_ratio = %v (present %v), want 0", v, ok)
	}
	toks := query(t, lake, `SELECT sum(len(list_filter(policy_mask, m -> m))) FROM rollouts`)
	if fmt.Sprint(m["train/tokens"]) != toks[0] {
		t.Errorf("train/tokens = %v, want the policy tokens %v", m["train/tokens"], toks[0])
	}

	// Same seed, another lake: the same rows.
	lake2, _ := testLake(t)
	mustRun(t, lake2, config, initJob, runOpt{})
	mustRun(t, lake2, config, episodeJob, runOpt{steps: 1})
	for _, q := range []string{
		`SELECT rollout_id, completion, completion_tokens, logprobs, policy_mask, turn_offsets, finish_reason, env_reward FROM rollouts ORDER BY 1`,
		`SELECT rollout_id, turn, text, finish, observation, reward, status, policy_tokens, observation_tokens FROM turns ORDER BY 1, 2`,
	} {
		if a, b := query(t, lake, q), query(t, lake2, q); !equal(a, b) {
			t.Errorf("second run differs: %s", q)
		}
	}

	// stop_tokens := the id of '+' (14 in this chars tokenizer) ends the
	// turns where stop := '+' does: the same rows.
	lake3, _ := testLake(t)
	mustRun(t, lake3, config, initJob, runOpt{})
	mustRun(t, lake3, config, strings.Replace(episodeJob, "stop := '+'", "stop_tokens := '14'", 1), runOpt{steps: 1})
	q := `SELECT rollout_id, completion_tokens, logprobs, policy_mask, turn_offsets FROM rollouts ORDER BY 1`
	if !equal(query(t, lake, q), query(t, lake3, q)) {
		t.Errorf("stop_tokens := '14' and stop := '+' differ")
	}
	t.Logf("episodes: %v multi-turn rows, %v continued turns", multi, cont)
}

// testEnv is an environment for the tests: it fails, stalls or answers
// "1+" according to the prompt_id and turn.
type testEnv struct{}

func (testEnv) Close() error { return nil }
func (testEnv) Step(ctx context.Context, ep *env.Episode) (env.Observation, error) {
	switch {
	case ep.PromptID == "p1" && ep.Turn == 1 && strings.HasPrefix(os.Getenv("RLJOB_TEST_ENV"), "fail"):
		return env.Observation{}, errors.New("the tool crashed")
	case ep.PromptID == "p2" && ep.Turn == 0:
		select { // stalls past turn_timeout, ignoring ctx on purpose
		case <-time.After(2 * time.Second):
		case <-testEnvStop:
		}
		return env.Observation{Text: "late"}, nil
	}
	return env.Observation{Text: "1+"}, nil
}

var (
	testEnvStop = make(chan struct{})
	testEnvOnce sync.Once
)

func init() {
	env.Register("test_env", "tests: fails at p1 turn 1 under RLJOB_TEST_ENV=fail, stalls at p2 turn 0", func(env.Config) (env.Env, error) { return testEnv{}, nil })
}

const envErrJob = `
CREATE OR REPLACE TABLE batch AS SELECT 'p' || i AS prompt_id, CAST(i AS VARCHAR) || '+' AS prompt FROM range(4) t(i);
CALL rollout(prompts := 'batch', n := 2, max_new_tokens := 20, env := 'test_env', max_turns := 3, max_turn_tokens := 3,
             turn_timeout := 0.2, timeout_reward := -1);
`

// TestEpisodeEnvErrorsAndTimeout: an environment error fails the call with
// a message naming the environment, the episode and the turn, and commits
// nothing (no rollouts, no turns); a stalled call ends its episode at
// turn_timeout with status 'timeout' and timeout_reward, and the step goes
// on.
func TestEpisodeEnvErrorsAndTimeout(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	t.Setenv("RLJOB_TEST_ENV", "fail")
	_, err := runJob(t, lake, config, envErrJob, runOpt{steps: 1})
	var de *jobs.DataError
	if err == nil || !errors.As(err, &de) {
		t.Fatalf("err = %v, want a DataError", err)
	}
	for _, want := range []string{`environment "test_env"`, `prompt_id "p1"`, "turn 1", "the tool crashed", "nothing was committed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for _, table := range []string{"rollouts", "turns"} {
		if _, err := os.Stat(filepath.Join(lake, table)); err == nil {
			if files := filesUnder(t, lake, table); len(files) > 0 {
				t.Errorf("%s has files after the failed call: %v", table, keys(files))
			}
		}
	}

	t.Setenv("RLJOB_TEST_ENV", "")
	t0 := time.Now()
	mustRun(t, lake, config, envErrJob, runOpt{steps: 1})
	if s := time.Since(t0); s > 1900*time.Millisecond {
		t.Errorf("the step took %v: a stalled environment call held it past turn_timeout", s)
	}
	got := query(t, lake, `SELECT r.prompt_id, r.finish_reason, t.status, t.reward, t.turn FROM rollouts r JOIN turns t USING (rollout_id) WHERE r.prompt_id = 'p2' ORDER BY r.sample_idx`)
	want := []string{"p2|timeout|timeout|-1|0", "p2|timeout|timeout|-1|0"}
	if !equal(got, want) {
		t.Errorf("p2 rows = %v, want %v", got, want)
	}
	if n := query(t, lake, `SELECT count(*) FROM turns WHERE status = 'continue' AND observation = '1+'`); n[0] == "0" {
		t.Errorf("no continued turn in the other episodes")
	}
	testEnvOnce.Do(func() { close(testEnvStop) })
}

// TestEpisodeArgs: episode arguments without env, an unknown environment
// and a bad turns table are refused before the run.
func TestEpisodeArgs(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	for _, tc := range []struct{ call, want string }{
		{"max_turns := 2", "max_turns needs env"},
		{"env := 'nope'", `env "nope" is not a known environment`},
		{"env := 'calculator', turns := 'rollouts'", "must be a table name other than output"},
		{"env := 'calculator', turn_timeout := 0", "turn_timeout must be > 0"},
		{"env := 'calculator', stop_tokens := 'x'", "stop_tokens"},
	} {
		job := "CREATE OR REPLACE TABLE batch AS SELECT 'a' AS prompt_id, '1+' AS prompt;\nCALL rollout(prompts := 'batch', " + tc.call + ");\n"
		_, err := runJob(t, lake, config, job, runOpt{steps: 1})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.call, err, tc.want)
		}
	}
}

// TestPolicyMaskLoss checks train's loss mask against a hand-computed
// case. Two rows, prompt [1 2] / [1 3], completions of 5 and 4 tokens with
// policy_mask [T F T F T] and [F T T F], advantages 1 and −2; logprobs are
// the policy's own (logprobs stage, 0 at masked tokens) with the masked
// positions then overwritten by 5.0. On-policy ρ = 1 on the policy tokens,
// so with seq-mean-token-sum pg_loss = mean(−A_i·n_i) = mean(−1·3, 2·2) =
// 0.5 (unmasked it would be mean(−5, 8) = 1.5, and the 5.0s would make the
// first log-ratio far from 0); train/tokens counts the 5 policy tokens.
func TestPolicyMaskLoss(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	job := `
CREATE OR REPLACE TABLE d AS SELECT * FROM (VALUES
  ('a', [1, 2], [3, 4, 5, 6, 7], [true, false, true, false, true], 1.0),
  ('b', [1, 3], [8, 9, 10, 11], [false, true, true, false], -2.0)) t(rollout_id, prompt_tokens, completion_tokens, policy_mask, advantage);
CALL logprobs(data := 'd', output := 'lp', temperature := 1.0);
CREATE OR REPLACE TABLE td AS
SELECT d.*, list_transform(range(len(d.policy_mask)), i -> CASE WHEN d.policy_mask[i+1] THEN l.logprobs[i+1] ELSE 5.0 END)::FLOAT[] AS logprobs,
       l.logprobs AS recomputed
FROM d JOIN this_step_lp l USING (rollout_id);
CALL train(data := 'td', lr := 1e-2, loss_agg := 'seq-mean-token-sum', temperature := 1.0);
`
	mustRun(t, lake, config, job, runOpt{steps: 1})
	if got := query(t, lake, `SELECT rollout_id, list_transform(list_zip(logprobs, [true, false, true, false, true]), x -> x[2] OR x[1] != 0) FROM lp WHERE rollout_id = 'a'`); len(got) != 1 || got[0] != "a|[true,false,true,false,true]" {
		t.Errorf("logprobs stage on a masked row: %v, want 0 exactly at the masked positions", got)
	}
	m := metricsOf(t, lake, 1)
	for name, want := range map[string]float64{"actor/pg_loss": 0.5, "actor/first_max_abs_log_ratio": 0, "train/tokens": 5, "response_length/mean": 2.5} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
}
