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
SELECT * FROM grpo_advantages('this_step');

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.2, loss_agg := 'token-mean');

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'train/groups_informative', count(DISTINCT prompt_id) FILTER (group_std > 0) FROM train_batch;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
