-- examples/recipes/wreinforce.sql — Weighted-REINFORCE (Zhu et al. 2025,
-- "The Surprising Effectiveness of Negative Reinforcement in LLM
-- Reasoning", arXiv:2506.01347): REINFORCE with ±1 rewards and no baseline,
-- the positive samples' term scaled by λ = 0.1 (--set lambda=X), so negative
-- samples dominate the update but correct answers are still reinforced a
-- little (the paper's best trade-off across k).
--
--   rljob run examples/recipes/wreinforce.sql --lake L --run R --seed 1 --steps 24
--
-- Per step: as baseline.sql (32 uniform prompts × 8 samples, exact reward,
-- one update at lr 5e-4, token-mean), with the advantages
-- w_reinforce_advantages('this_step', lam := 0.1) (sql/lib/63_w_reinforce.sql):
-- +λ for a correct rollout, −1 for an incorrect one. 256 rollouts per step.
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
SELECT * FROM w_reinforce_advantages('this_step', lam := coalesce(getvariable('lambda'), 0.1));

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.2, loss_agg := 'token-mean');

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'wreinforce/lambda', coalesce(getvariable('lambda'), 0.1);

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
