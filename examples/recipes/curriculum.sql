-- examples/recipes/curriculum.sql — a sweet-spot curriculum whose level
-- rises with the policy (SEELE, Li et al. 2025, arXiv:2509.06923; GHPO, Liu
-- et al. 2025, arXiv:2507.10628; the [0.05, 0.95] sweet spot of
-- examples/arith/grpo.sql made adaptive).
--
--   rljob run examples/recipes/curriculum.sql --lake L --run R --seed 1 --steps 24
--
-- Per step:
--   1. level = recent_pass_rate(5): the policy's mean training accuracy over
--      its last 5 steps (NULL → 0.5 before any); the band of prompt EMA pass
--      rates it trains on is centred on 1 − level, ± 0.25, inside [0.05, 0.95]
--      (sweet_spot_band, sql/lib/60_curriculum.sql): the better the policy
--      gets, the harder the prompts;
--   2. batch: the band's prompts, closest to the target first, then prompts
--      never tried (hash order), 32 in all — the first steps are all
--      untried prompts, whose one-step pass rates then fill the band;
--   3–5. rollout 8 × temperature 1, exact reward, GRPO advantages on every
--      group and one update, as baseline.sql (256 rollouts per step);
--   6. metrics: curriculum/level, curriculum/band_lo, curriculum/band_hi,
--      curriculum/in_band (how many of the batch came from the band).
CREATE OR REPLACE TABLE level AS
SELECT recent_pass_rate(5) AS level;

CREATE OR REPLACE TABLE band AS
SELECT * FROM sweet_spot_band((SELECT level FROM level), width := 0.25);

CREATE OR REPLACE TABLE batch AS
SELECT p.prompt_id, p.prompt, p.answer, p.task, b.prompt_id IS NOT NULL AS in_band
FROM prompts AS p
LEFT JOIN band AS b USING (prompt_id)
LEFT JOIN prompt_stats AS s USING (prompt_id)
WHERE p.run = getvariable('run') AND p.split = 'train'
  AND (b.prompt_id IS NOT NULL OR s.prompt_id IS NULL)
ORDER BY b.prompt_id IS NULL, b.distance, hash(p.prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);

CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task FROM batch', n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored WHERE tag = 'train';

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM grpo_advantages('this_step');

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.2, loss_agg := 'token-mean');

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'train/groups_informative', count(DISTINCT prompt_id) FILTER (group_std > 0) FROM train_batch
UNION ALL SELECT 'curriculum/level', coalesce((SELECT level FROM level), 0.5)
UNION ALL SELECT 'curriculum/band_lo', greatest(0.05, 1 - coalesce((SELECT level FROM level), 0.5) - 0.25)
UNION ALL SELECT 'curriculum/band_hi', least(0.95, 1 - coalesce((SELECT level FROM level), 0.5) + 0.25)
UNION ALL SELECT 'curriculum/in_band', count_if(in_band) FROM batch;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
