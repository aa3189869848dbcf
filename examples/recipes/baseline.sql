-- examples/recipes/baseline.sql — plain GRPO, the baseline every recipe is
-- compared with (DeepSeekMath, Shao et al. 2024, arXiv:2402.03300).
--
--   rljob run examples/recipes/baseline.sql --lake L --run R --seed 1 --steps 24
--
-- Per step: prompts_per_step (default 32) train prompts drawn uniformly (a
-- fresh hash order every step, no curriculum, no filter), n (default 8)
-- samples each at temperature 1, the exact verifier, GRPO advantages over
-- every group (all-equal groups get advantage 0 and stay in the token-mean
-- denominator), one on-policy update (ρ = 1, so no clipping acts) with lr
-- 5e-4, token-mean, no KL — the settings of examples/arith/grpo.sql without
-- its sweet-spot selection and group_std > 0 filter. 256 rollouts per step.
INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'train/groups_informative' AS name, count(DISTINCT prompt_id) FILTER (group_std > 0) AS value FROM train_batch;

INCLUDE 'core/grpo_update.sql';
