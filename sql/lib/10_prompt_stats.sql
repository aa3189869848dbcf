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
--
-- How it is computed: the history is cut into pieces in step order, each
-- with its attempts, correct, last step, number of steps k, ema_part
-- (sum of 0.5 * 0.5^(k-j) * p_j over its steps) and first_rate (its oldest
-- p). Then ema_pass_rate = sum over pieces of ema_part * 0.5^(steps in
-- later pieces) + 0.5^(all steps) * the oldest piece's first_rate, which is
-- the sum above. In a job, the run's compacted steps 0..T come as a few
-- summary pieces (the view _prompt_summary, written by rljob lake compact;
-- T = getvariable('prompt_summary_through') for the run
-- getvariable('prompt_summary_run'), sql/summary.go) and only the
-- steps after T are read from scored, one piece per step; so a step of a
-- long run reads a bounded amount. Outside a job T = -1: every step comes
-- from scored.
CREATE OR REPLACE VIEW prompt_stats AS
WITH per_step AS (
    SELECT prompt_id, step,
           count(*) AS attempts,
           count_if(correct) AS correct
    FROM scored
    WHERE tag = 'train'
      AND (getvariable('run') IS NULL OR run = CAST(getvariable('run') AS VARCHAR))
      AND step > CASE WHEN getvariable('run') IS NOT NULL
                           AND CAST(getvariable('run') AS VARCHAR) = getvariable('prompt_summary_run')
                      THEN getvariable('prompt_summary_through') ELSE -1 END
    GROUP BY prompt_id, step
),
pieces AS (
    SELECT prompt_id, seg_first AS pos, attempts, correct, last_step, n_steps AS k, ema_part, first_rate
    FROM _prompt_summary
    WHERE run = CAST(getvariable('run') AS VARCHAR) AND run = getvariable('prompt_summary_run')
    UNION ALL
    SELECT prompt_id, step, attempts, correct, step, 1, 0.5 * correct / attempts, correct / attempts
    FROM per_step
),
aged AS (
    SELECT *,
           coalesce(sum(k) OVER (PARTITION BY prompt_id ORDER BY pos
                                 ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0) AS k_after,
           sum(k) OVER (PARTITION BY prompt_id) AS k_all,
           row_number() OVER (PARTITION BY prompt_id ORDER BY pos) AS ord
    FROM pieces
)
SELECT prompt_id,
       CAST(sum(attempts) AS BIGINT) AS attempts,
       CAST(sum(correct) AS BIGINT) AS correct,
       sum(correct) / sum(attempts) AS pass_rate,
       max(last_step) AS last_step,
       sum(ema_part * pow(0.5, k_after)
           + CASE WHEN ord = 1 THEN pow(0.5, k_all) * first_rate ELSE 0 END) AS ema_pass_rate
FROM aged
GROUP BY prompt_id;
