-- examples/recipes/passk.sql — pass@k as the training objective (Chen et al.
-- 2025, "Pass@k Training for Adaptively Balancing Exploration and
-- Exploitation of Large Reasoning Models", arXiv:2508.10751): each rollout's
-- advantage is its expected advantage when the group is cut into k-subsets
-- scored by max (pass@k) — in closed form, pass_at_k_advantages
-- (sql/lib/64_pass_at_k_advantages.sql) — so a correct answer to a prompt
-- the group mostly fails is worth a lot, and an incorrect one in a group
-- that already passes at k costs nothing.
--
--   rljob run examples/recipes/passk.sql --lake L --run R --seed 1 --steps 24 [--set k=4]
--
-- Per step: as baseline.sql (32 uniform prompts × 8 samples, exact reward,
-- one update at lr 5e-4, token-mean), with pass_at_k_advantages('this_step', k)
-- (k = 4 of the 8 samples by default). 256 rollouts per step.
INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM pass_at_k_advantages('this_step', coalesce(getvariable('k'), 4));
CREATE OR REPLACE TABLE recipe_metrics AS SELECT 'passk/group_pass_at_k_mean' AS name, avg(group_pass_at_k) AS value FROM train_batch;

INCLUDE 'core/grpo_update.sql';
