package rl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// execEnvScript answers each turn as the SQL macro obs of execEpisodeJob
// does ('=' || length(text) % 10 || '+', reward length(text), not done),
// in sh over the JSON-lines protocol; the episodes of prompt $STALL get
// their answer after 10 s, in the background.
const execEnvScript = `while IFS= read -r line; do
	id=${line#*\"id\":}; id=${id%%,*}
	pid=${line#*\"prompt_id\":\"}; pid=${pid%%\"*}
	text=${line#*\"text\":\"}; text=${text%%\"*}
	n=${#text}
	if [ "$pid" = "$STALL" ]; then
		(sleep 10; printf '{"id":%s,"result":{}}\n' "$id") &
		continue
	fi
	printf '{"id":%s,"result":{"observation":"=%s+","reward":%s,"done":false}}\n' "$id" $((n % 10)) "$n"
done
`

// execEpisodeJob samples episodes with the environment {{env}}; the macro
// obs is the SQL twin of execEnvScript.
const execEpisodeJob = `
CREATE OR REPLACE MACRO obs(prompt_id, turn, text, finish, transcript) AS
  {'observation': '=' || CAST(length(text) % 10 AS VARCHAR) || '+', 'reward': CAST(length(text) AS DOUBLE), 'done': false};
CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, CAST(i % 5 AS VARCHAR) || '+' || CAST(i % 4 AS VARCHAR) || '=' AS prompt
FROM range(4) t(i);
CALL rollout(prompts := 'batch', n := 3, max_new_tokens := 30, temperature := 1.0,
             env := '{{env}}', max_turns := 3, max_turn_tokens := 5, stop := '+', turn_timeout := 1, timeout_reward := -1);
`

// TestExecEnvEpisodes: rollout with env := 'exec:CMD' writes exactly the
// rows and turns of the same environment written as a SQL macro (same
// seed: same tokens, masks, log-probs, observations, rewards, statuses);
// and a prompt whose turns stall 10 s ends its episodes at turn_timeout
// (status 'timeout', timeout_reward) while the step goes on.
func TestExecEnvEpisodes(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(script, []byte(execEnvScript), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(env string) string {
		t.Helper()
		lake, config := testLake(t)
		mustRun(t, lake, config, initJob, runOpt{})
		mustRun(t, lake, config, strings.ReplaceAll(execEpisodeJob, "{{env}}", env), runOpt{})
		return lake
	}
	const rows = `SELECT rollout_id, completion_tokens, policy_mask, logprobs, turn_offsets, finish_reason, num_turns, env_reward FROM rollouts ORDER BY rollout_id`
	const turns = `SELECT rollout_id, turn, text, finish, observation, reward, status, policy_tokens, observation_tokens FROM turns ORDER BY rollout_id, turn`
	sqlLake := run("sql:obs")
	execLake := run("exec:STALL=none sh " + script)
	for _, q := range []string{rows, turns} {
		want, got := query(t, sqlLake, q), query(t, execLake, q)
		if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s\nexec env:\n%s\nsql env:\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if n := query(t, execLake, `SELECT count(*) FROM turns WHERE status = 'continue'`); n[0] == "0" {
		t.Error("no turn continued: the test exercises nothing")
	}

	t0 := time.Now()
	stallLake := run("exec:STALL=p2 sh " + script)
	if el := time.Since(t0); el > 8*time.Second {
		t.Errorf("init + the step took %s: a 10 s stall should cost its 1 s turn_timeout", el)
	}
	got := query(t, stallLake, `SELECT r.prompt_id, r.finish_reason, t.status, t.reward FROM rollouts r JOIN turns t USING (rollout_id)
		WHERE r.prompt_id = 'p2' ORDER BY r.sample_idx`)
	if strings.Join(got, ",") != "p2|timeout|timeout|-1,p2|timeout|timeout|-1,p2|timeout|timeout|-1" {
		t.Errorf("p2's episodes: %v, want each ended at its first turn by the timeout", got)
	}
	if n := query(t, stallLake, `SELECT count(*) FROM turns WHERE prompt_id <> 'p2' AND status = 'continue'`); n[0] == "0" {
		t.Error("the other prompts' episodes did not go on")
	}
}
