-- examples/recipes/nsr.sql — Negative Sample Reinforcement (Zhu et al. 2025,
-- "The Surprising Effectiveness of Negative Reinforcement in LLM
-- Reasoning", arXiv:2506.01347): train on the incorrect rollouts only, each
-- with advantage −1, so the update only pushes probability away from wrong
-- answers and the softmax hands it to the alternatives in proportion to
-- what the policy already believes — the paper finds this keeps (or
-- raises) pass@k at large k where PSR and GRPO lower it.
--
--   rljob run examples/recipes/nsr.sql --lake L --run R --seed 1 --steps 24
--
-- Per step: as baseline.sql (32 uniform prompts × 8 samples, exact reward,
-- one update at lr 5e-4, token-mean over the rows trained on), but the
-- advantages are nsr_advantages('this_step') (sql/lib/63_w_reinforce.sql):
-- only the incorrect rows, advantage −1. 256 rollouts per step.
CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY hash(prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);

CALL rollout(prompts := 'batch', n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored WHERE tag = 'train';

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM nsr_advantages('this_step');

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.2, loss_agg := 'token-mean');

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'nsr/negative_rows', count(*) FROM train_batch;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
