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
SELECT * FROM pass_at_k_advantages('this_step', coalesce(getvariable('k'), 4));

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.2, loss_agg := 'token-mean');

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'passk/group_pass_at_k_mean', avg(group_pass_at_k) FROM train_batch;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
