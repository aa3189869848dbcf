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
INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM nsr_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS SELECT 'nsr/negative_rows' AS name, count(*) AS value FROM train_batch;

INCLUDE 'core/grpo_update.sql';
