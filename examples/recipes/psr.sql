-- examples/recipes/psr.sql — Positive Sample Reinforcement (Zhu et al. 2025,
-- "The Surprising Effectiveness of Negative Reinforcement in LLM
-- Reasoning", arXiv:2506.01347), the mirror of nsr.sql: train on the
-- correct rollouts only, each with advantage +1, so the update only raises
-- the probability of answers the policy already finds — the paper finds it
-- raises pass@1 fast but narrows the distribution and lowers pass@k at
-- large k, where NSR keeps it.
--
--   rljob run examples/recipes/psr.sql --lake L --run R --seed 1 --steps 24
--
-- Per step: as baseline.sql (32 uniform prompts × 8 samples, exact reward,
-- one update at lr 5e-4, token-mean over the rows trained on), but the
-- advantages are psr_advantages('this_step') (sql/lib/67_psr.sql): only the
-- correct rows, advantage +1 (the wrong rows are left out rather than given
-- 0, as nsr.sql leaves out the correct ones: a 0 row would only enlarge the
-- token-mean denominator). A step with no correct rollout trains on nothing
-- (the policy is committed unchanged). 256 rollouts per step.
INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM psr_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS SELECT 'psr/positive_rows' AS name, count(*) AS value FROM train_batch;

INCLUDE 'core/grpo_update.sql';
