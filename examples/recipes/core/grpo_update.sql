-- examples/recipes/core/grpo_update.sql — the update half of a GRPO step,
-- INCLUDEd by the recipes: one update on the table train_batch (rows with
-- their advantages) at lr (default 5e-4), clip_low 0.2, clip_high (default
-- 0.2), token-mean, entropy_coef and minibatch_size (default: train's, 0 and
-- all rows) — each a --set or a recipe's SET VARIABLE; then the step's
-- metrics: train/reward_mean and train/rollouts over this_step, and the
-- recipe's own rows of the table recipe_metrics (name, value).
CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := coalesce(getvariable('clip_high'), 0.2),
           loss_agg := 'token-mean', entropy_coef := getvariable('entropy_coef'), minibatch_size := getvariable('minibatch_size'));

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT name, value FROM recipe_metrics;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
