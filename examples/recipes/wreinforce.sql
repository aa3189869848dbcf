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
INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM w_reinforce_advantages('this_step', lam := coalesce(getvariable('lambda'), 0.1));
CREATE OR REPLACE TABLE recipe_metrics AS SELECT 'wreinforce/lambda' AS name, coalesce(getvariable('lambda'), 0.1) AS value;

INCLUDE 'core/grpo_update.sql';
