-- examples/recipes/replay.sql — GRPO with a replay buffer read from the lake
-- (ExGRPO, Zhan et al. 2025, arXiv:2510.02245; RoRecomp, Li et al. 2025,
-- arXiv:2509.25958 for the priority of short correct and long incorrect
-- rollouts): stored correct rollouts of prompts the policy still finds hard,
-- and the same prompts' longest stored incorrect ones, rejoin those prompts'
-- groups, with their behaviour log-probs and truncated importance sampling.
--
--   rljob run examples/recipes/replay.sql --lake L --run R --seed 1 --steps 24
--
-- Per step:
--   1. replayed: replay(max_age := 8, max_pass_rate := 0.25) (sql/lib/62_replay.sql;
--      --set replay_max_pass_rate=X, replay_prompts=N change 0.25 and 8):
--      per prompt whose EMA pass rate is <= 0.25, its shortest, freshest
--      correct train rollout of the last 8 steps; the 8 with the lowest
--      replay_priority (hardest, then freshest);
--      then RoRecomp's other half (--set replay_incorrect=0 turns it off;
--      default on): replay(..., kind := 'incorrect') of the same prompts,
--      each prompt's longest, freshest incorrect train rollout of the last 8
--      steps (a group then gets one short correct and one long incorrect
--      stored row: positive and negative advantage);
--   2. batch: those prompts first, then uniform ones (hash order), 32 in all;
--   3. rollout 8 × temperature 1 and the exact reward, as baseline.sql;
--   4. logprobs (policy 'latest'): log π of the current checkpoint for this
--      step's rollouts and the replayed ones, in one call (for this step's
--      rows they equal the stored behaviour log-probs bit for bit, so their
--      TIS weight is exactly 1; for a replayed row they are π_old of the
--      update and its stored logprobs are the behaviour π_behav);
--   5. mixed groups: each replayed rollout joins its prompt's group of this
--      step (step set to this step, so grpo_advantages groups it there: a
--      group of 10, or 9 without an incorrect one), with logprobs = the recomputed π_old and old_logprobs =
--      the behaviour log-probs; train then weights its policy-gradient term
--      by w = min(exp(log π_old − log π_behav), tis_cap = 2) (TIS);
--   6. GRPO advantages over the mixed groups, one update (lr 5e-4,
--      token-mean), metrics replay/rows, replay/rows_incorrect,
--      replay/mean_age, replay/len_incorrect_mean (vs train/len_incorrect_mean
--      of this step's incorrect rollouts) and train's actor/tis_* metrics.
-- Rollouts sampled per step: 256 (the replayed ones cost no sampling).
CREATE OR REPLACE TABLE replayed_correct AS
SELECT * FROM replay(max_age := 8, max_pass_rate := coalesce(getvariable('replay_max_pass_rate'), 0.25))
ORDER BY replay_priority, prompt_id
LIMIT coalesce(getvariable('replay_prompts'), 8);

CREATE OR REPLACE TABLE replayed AS
SELECT * FROM replayed_correct
UNION ALL BY NAME
SELECT * FROM replay(max_age := 8, max_pass_rate := coalesce(getvariable('replay_max_pass_rate'), 0.25), kind := 'incorrect')
WHERE coalesce(getvariable('replay_incorrect'), 1) = 1
  AND prompt_id IN (SELECT prompt_id FROM replayed_correct);

CREATE OR REPLACE TABLE batch AS
SELECT p.prompt_id, p.prompt, p.answer, p.task
FROM prompts AS p
LEFT JOIN replayed_correct AS r USING (prompt_id)
WHERE p.run = getvariable('run') AND p.split = 'train'
ORDER BY r.prompt_id IS NULL, hash(p.prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);

INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE lp_input AS
SELECT rollout_id, prompt_id, prompt_tokens, completion_tokens, temperature FROM this_step
UNION ALL
SELECT rollout_id, prompt_id, prompt_tokens, completion_tokens, temperature FROM replayed;

CALL logprobs(data := 'lp_input', policy := 'latest', output := 'replay_logprobs');

CREATE OR REPLACE TABLE mixed AS
SELECT t.* REPLACE (lp.logprobs AS logprobs), t.logprobs AS old_logprobs
FROM this_step AS t
JOIN this_step_replay_logprobs AS lp USING (rollout_id)
UNION ALL BY NAME
SELECT r.* EXCLUDE (replay_age, replay_rank, ema_pass_rate, replay_priority)
           REPLACE (CAST(getvariable('step') AS BIGINT) AS step, lp.logprobs AS logprobs),
       r.logprobs AS old_logprobs
FROM replayed AS r
JOIN this_step_replay_logprobs AS lp USING (rollout_id)
WHERE r.prompt_id IN (SELECT prompt_id FROM this_step);

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('mixed');
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'train/groups_informative' AS name, count(DISTINCT prompt_id) FILTER (group_std > 0) AS value FROM train_batch
UNION ALL SELECT 'replay/rows', count(*) FROM mixed WHERE rollout_id IN (SELECT rollout_id FROM replayed)
UNION ALL SELECT 'replay/rows_incorrect', count(*) FROM mixed WHERE rollout_id IN (SELECT rollout_id FROM replayed WHERE NOT coalesce(correct, false))
UNION ALL SELECT 'replay/len_incorrect_mean', avg(len(completion_tokens)) FROM replayed WHERE NOT coalesce(correct, false)
UNION ALL SELECT 'train/len_incorrect_mean', avg(len(completion_tokens)) FROM this_step WHERE NOT coalesce(correct, false)
UNION ALL SELECT 'replay/mean_age', avg(replay_age) FROM replayed;

-- train (tis_cap 2, its default, weights the replayed rows: TIS)
INCLUDE 'core/grpo_update.sql';
