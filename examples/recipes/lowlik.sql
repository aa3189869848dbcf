-- examples/recipes/lowlik.sql — a low-likelihood focus (after He et al.
-- 2025, "Rewarding the Unlikely: Lifting GRPO Beyond Distribution
-- Sharpening", arXiv:2506.02355, which finds GRPO reinforces the correct
-- answers the policy already finds likely; here the same observation steers
-- the prompt choice instead of the reward): prefer prompts whose correct
-- rollouts the policy sampled with a low sequence log-likelihood — solved,
-- but not yet confidently.
--
--   rljob run examples/recipes/lowlik.sql --lake L --run R --seed 1 --steps 24
--
-- Per step:
--   1. focus: correct_loglik(max_age := 8) (sql/lib/65_low_likelihood.sql):
--      per prompt, the mean of Σ log π over its correct train rollouts of the
--      last 8 steps; the prompts whose pass rate is below 0.95 (something
--      left to learn), least likely first — half the batch (16);
--   2. the rest of the 32: uniform (hash order), not already in focus;
--   3–5. rollout 8 × temperature 1, exact reward, GRPO advantages on every
--      group, one update (lr 5e-4, token-mean), as baseline.sql. 256
--      rollouts per step.
CREATE OR REPLACE TABLE focus AS
SELECT l.prompt_id, l.mean_seq_logprob
FROM correct_loglik(max_age := 8) AS l
JOIN prompt_stats AS s USING (prompt_id)
WHERE s.pass_rate < 0.95
ORDER BY l.mean_seq_logprob, l.prompt_id
LIMIT coalesce(getvariable('prompts_per_step'), 32) // 2;

CREATE OR REPLACE TABLE picked AS
SELECT p.prompt_id, p.prompt, p.answer, p.task, f.prompt_id IS NOT NULL AS focused
FROM prompts AS p
LEFT JOIN focus AS f USING (prompt_id)
WHERE p.run = getvariable('run') AND p.split = 'train'
ORDER BY f.prompt_id IS NULL, f.mean_seq_logprob, hash(p.prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);

CREATE OR REPLACE TABLE batch AS SELECT * EXCLUDE (focused) FROM picked;
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'train/groups_informative' AS name, count(DISTINCT prompt_id) FILTER (group_std > 0) AS value FROM train_batch
UNION ALL SELECT 'lowlik/focused', count_if(focused) FROM picked
UNION ALL SELECT 'lowlik/focus_seq_logprob_mean', avg(mean_seq_logprob) FROM focus;

INCLUDE 'core/grpo_update.sql';
