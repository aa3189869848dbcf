-- prompt_stats: what past training steps say about each prompt, for
-- curriculum choices such as the "sweet spot" (0.05 <= pass_rate <= 0.95).
--
-- One row per prompt_id over the train-tagged rows of scored (tag = 'train';
-- evaluation rollouts never steer training). When the DuckDB variable run is
-- set (the job runner sets it before every iteration) only that run's rows
-- count, so runs sharing a lake do not see each other's history; with run
-- unset (ad-hoc `rljob sql`) every run counts and rows of the same step
-- number are pooled.
--
--   attempts      = number of scored rows                              BIGINT
--   correct       = number of those with correct = true (NULL = false) BIGINT
--   pass_rate     = correct / attempts                                 DOUBLE
--   last_step     = max(step)                                          BIGINT
--   ema_pass_rate = exponential moving average of the per-step pass
--                   rates, oldest to newest, alpha = 0.5:              DOUBLE
--
--     p_j   = correct_j / attempts_j for the prompt's j-th step with
--             train rows (j = 1..m, in increasing step order; steps without
--             rows for the prompt are skipped, not counted as 0)
--     ema_1 = p_1
--     ema_j = alpha * p_j + (1 - alpha) * ema_(j-1)
--     ema_pass_rate = ema_m
--              = sum_j w_j * p_j,  w_m-a = alpha * (1 - alpha)^a for a < m-1,
--                                  w_1   = (1 - alpha)^(m-1)   (weights sum to 1)
--
--   so the latest step counts half, the one before a quarter, and so on, and
--   a prompt seen once has ema_pass_rate = pass_rate.
CREATE OR REPLACE VIEW prompt_stats AS
WITH per_step AS (
    SELECT prompt_id, step,
           count(*) AS attempts,
           count_if(correct) AS correct
    FROM scored
    WHERE tag = 'train'
      AND (getvariable('run') IS NULL OR run = CAST(getvariable('run') AS VARCHAR))
    GROUP BY prompt_id, step
),
aged AS (
    SELECT *,
           row_number() OVER (PARTITION BY prompt_id ORDER BY step DESC) - 1 AS age,  -- 0 = newest
           count(*) OVER (PARTITION BY prompt_id) AS n_steps
    FROM per_step
)
SELECT prompt_id,
       CAST(sum(attempts) AS BIGINT) AS attempts,
       CAST(sum(correct) AS BIGINT) AS correct,
       sum(correct) / sum(attempts) AS pass_rate,
       max(step) AS last_step,
       sum(CASE WHEN age = n_steps - 1 THEN pow(0.5, age)          -- oldest: (1 - alpha)^(m-1)
                ELSE 0.5 * pow(0.5, age) END                       -- alpha * (1 - alpha)^age
           * correct / attempts) AS ema_pass_rate
FROM aged
GROUP BY prompt_id;
