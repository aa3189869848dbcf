-- replay(max_age := 8, max_pass_rate := 0.25, per_prompt := 1, src := 'scored', kind := 'correct'):
-- a replay buffer read straight from the lake (ExGRPO, Zhan et al. 2025,
-- arXiv:2510.02245: replay correct trajectories of prompts the policy still
-- finds hard; RoRecomp, Li et al. 2025, arXiv:2509.25958: a priority batch
-- of short correct and long incorrect trajectories). The stored train
-- rollouts of this run (scored, tag 'train', run = variable run) of prompts
-- whose current ema_pass_rate (prompt_stats) is at most max_pass_rate,
-- sampled at most max_age steps ago, that are correct (kind 'correct') or
-- not (kind 'incorrect': correct false or NULL):
--
--   age = getvariable('step') - step,   keep 1 <= age <= max_age
--         (variable step unset: age counts from the newest step in scored + 1)
--   per prompt, the per_prompt first by
--     kind 'correct':   len(completion_tokens) ASC  — short correct first —,
--     kind 'incorrect': len(completion_tokens) DESC — long incorrect first —,
--   then age ASC (freshest behaviour policy), rollout_id
--
-- Any other kind is an error. src names the table read instead of scored
-- (a string, read with query_table, so the macro binds when it is called,
-- not when the library loads). Output: every column of src (its logprobs
-- are the BEHAVIOUR log-probs of the policy that sampled the row: train
-- takes them as old_logprobs, and a logprobs call recomputes log π under
-- the current checkpoint), then
--   replay_age      BIGINT  age above
--   replay_rank     BIGINT  1 = the prompt's best row
--   ema_pass_rate   DOUBLE  the prompt's current EMA pass rate
--   replay_priority DOUBLE  ema_pass_rate + 0.01 * replay_age: hardest, then
--                           freshest first (ORDER BY it, LIMIT a budget)
CREATE OR REPLACE MACRO replay(max_age := 8, max_pass_rate := 0.25, per_prompt := 1, src := 'scored', kind := 'correct') AS TABLE
WITH now AS (
    SELECT coalesce(CAST(getvariable('step') AS BIGINT),
                    (SELECT max(step) + 1 FROM query_table(src))) AS step
),
cand AS (
    SELECT s.*, now.step - s.step AS replay_age, ps.ema_pass_rate AS __rl_ema
    FROM query_table(src) AS s
    JOIN prompt_stats AS ps ON ps.prompt_id = s.prompt_id
    CROSS JOIN now
    WHERE s.tag = 'train'
      AND CASE kind
              WHEN 'correct' THEN coalesce(s.correct, false)
              WHEN 'incorrect' THEN NOT coalesce(s.correct, false)
              ELSE error('replay: kind must be ''correct'' or ''incorrect'', got ' || coalesce(CAST(kind AS VARCHAR), 'NULL'))
          END
      AND (getvariable('run') IS NULL OR s.run = CAST(getvariable('run') AS VARCHAR))
      AND ps.ema_pass_rate <= max_pass_rate
      AND now.step - s.step BETWEEN 1 AND max_age
),
ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY prompt_id
                              ORDER BY CASE WHEN kind = 'incorrect' THEN -len(completion_tokens) ELSE len(completion_tokens) END,
                                       replay_age, rollout_id) AS replay_rank
    FROM cand
)
SELECT * EXCLUDE (__rl_ema, replay_age, replay_rank),
       CAST(replay_age AS BIGINT) AS replay_age,
       CAST(replay_rank AS BIGINT) AS replay_rank,
       CAST(__rl_ema AS DOUBLE) AS ema_pass_rate,
       CAST(__rl_ema + 0.01 * replay_age AS DOUBLE) AS replay_priority
FROM ranked
WHERE replay_rank <= per_prompt;
