-- examples/arith/grpo.sql — one GRPO step per iteration, prompts from the sweet spot.
--
--   rljob run examples/arith/grpo.sql --lake ./lake --run arith --seed 1 --steps 40
--
-- Each iteration (step S of the run):
--   1. batch: 32 train prompts whose pass rate so far (prompt_stats, train
--      rollouts of this run only) is in the sweet spot [0.05, 0.95] — prompts
--      never tried count as 0.5 — in an order that changes every step
--      (hash of prompt_id and step), so the epoch walks the whole split.
--   2. rollout: 8 samples per prompt (the GRPO group) from the latest
--      checkpoint at temperature 1.
--   3. reward: the exact verifier (1 when the completion is the answer, else 0).
--      Steps 1–3 read the history of earlier steps only (prompts,
--      prompt_stats); this step's rows are read through this_step_scored,
--      so a step interrupted and rerun chooses the same batch.
--   4. advantages: GRPO, (r − mean_g) / (std_g + 1e-6) per group (RL.md),
--      then DAPO dynamic sampling: groups whose 8 rewards are all equal have
--      no signal (advantage 0) and are dropped (group_std > 0).
--   5. train: one on-policy PPO-clip update (ρ = 1, so the plain policy
--      gradient) with DAPO's clip-higher, token-mean aggregation, no KL,
--      lr 5e-4 (--set lr=X overrides it; 2e-3 with 4 minibatches per step collapsed the SFT model;
--      1e-3 did as well as 5e-4: README.md, "What I tried").
--   6. metrics: the step's mean reward over ALL its rollouts (before the
--      filter), the share of groups kept, and the curriculum: how many
--      prompts the batch took and their mean pass rate before this step.
-- The train stage also writes actor/* and critic/score/* (over the kept rows).

CREATE OR REPLACE TABLE batch AS
SELECT p.prompt_id, p.prompt, p.answer, p.task
FROM prompts AS p
LEFT JOIN prompt_stats AS s USING (prompt_id)
WHERE p.run = getvariable('run') AND p.split = 'train'
  AND coalesce(s.pass_rate, 0.5) BETWEEN 0.05 AND 0.95
ORDER BY hash(p.prompt_id, getvariable('step'))
LIMIT 32;

CALL rollout(prompts := 'batch', policy := 'latest', n := 8, max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored
WHERE tag = 'train';

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM grpo_advantages('this_step')
WHERE group_std > 0;

CALL train(data := 'train_batch', policy := 'latest', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.28);

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/groups_kept', count(DISTINCT prompt_id) / (SELECT count(DISTINCT prompt_id) FROM this_step) FROM train_batch
UNION ALL SELECT 'curriculum/batch_prompts', count(*) FROM batch
UNION ALL SELECT 'curriculum/prior_pass_rate_mean', avg(coalesce(s.pass_rate, 0.5)) FROM batch LEFT JOIN prompt_stats AS s USING (prompt_id);

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
