-- examples/recipes/oneshot.sql — one-shot RLVR (Wang et al. 2025,
-- "Reinforcement Learning for Reasoning in Large Language Models with One
-- Training Example", arXiv:2504.20571): RL on a single prompt, sampled many
-- times per step, with an entropy bonus — the paper lifts held-out math
-- accuracy about as much as RL on thousands of prompts.
--
--   rljob run examples/recipes/oneshot.sql --lake L --run R --seed 1 --steps 24
--
-- The paper picks its example by the variance of its training accuracy in
-- an earlier run. Here the first step of the run is that probe: with no
-- history, it is a baseline.sql step (32 uniform prompts × 8 samples,
-- trained on). From the next step on the one prompt is the run's prompt
-- with the most train attempts, ties broken by the largest pass-rate
-- variance p(1 − p), then prompt_id: at the second step that is the probe
-- prompt nearest to p = 0.5, and it stays the most tried from then on, so
-- the choice is fixed — and the same on a rerun (it reads history only).
-- It gets n_one (default 256) samples per step in one GRPO group (256
-- rollouts per step, the baseline's budget), one update with
-- entropy_coef 0.01 (a bonus: loss − 0.01·H, token-mean), lr 5e-4.
CREATE OR REPLACE TABLE the_prompt AS
SELECT prompt_id
FROM prompt_stats
ORDER BY attempts DESC, pass_rate * (1 - pass_rate) DESC, prompt_id
LIMIT 1;

CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
  AND (prompt_id IN (SELECT prompt_id FROM the_prompt) OR NOT EXISTS (SELECT 1 FROM the_prompt))
ORDER BY hash(prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);

SET VARIABLE group_size = CASE WHEN (SELECT count(*) FROM the_prompt) = 1 THEN coalesce(getvariable('n_one'), 256) ELSE coalesce(getvariable('n'), 8) END;
SET VARIABLE entropy_coef = coalesce(getvariable('entropy_coef'), 0.01);
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS SELECT 'oneshot/prompts' AS name, count(DISTINCT prompt_id) AS value FROM this_step;

INCLUDE 'core/grpo_update.sql';
