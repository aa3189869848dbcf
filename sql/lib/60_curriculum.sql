-- Sweet-spot curriculum with a rising level (SEELE, Li et al. 2025,
-- arXiv:2509.06923; GHPO, Liu et al. 2025, arXiv:2507.10628: keep the
-- training problems at a difficulty the policy solves about half the time,
-- and raise the difficulty as the policy improves).
--
-- recent_pass_rate(k): the mean over this run's last k steps that have
-- train rows (tag = 'train' in scored; the run in variable run, or every
-- run when it is unset) of each step's pass rate (correct / rows, NULL
-- correct = false). NULL when there is no such step. DOUBLE.
--
--   p_s = count_if(correct) / count(*) over the train rows of step s
--   recent_pass_rate(k) = mean of p_s over the k newest such steps
--
-- In a job the lake views hold the steps before this one, so this is the
-- policy's recent training accuracy, the same on a rerun of the step.
CREATE OR REPLACE MACRO recent_pass_rate(k) AS (
    SELECT avg(p) FROM (
        SELECT step, count_if(correct) / count(*) AS p
        FROM scored
        WHERE tag = 'train'
          AND (getvariable('run') IS NULL OR run = CAST(getvariable('run') AS VARCHAR))
        GROUP BY step
        ORDER BY step DESC
        LIMIT k
    )
);

-- sweet_spot_band(level, width := 0.25, lo := 0.05, hi := 0.95): the
-- prompts of prompt_stats whose EMA pass rate lies in a band whose
-- difficulty rises with level (a number in [0, 1], e.g.
-- recent_pass_rate(5); NULL counts as 0.5):
--
--   target  = 1 - level                      (difficulty 1 - pass rate = level)
--   band_lo = greatest(lo, target - width)
--   band_hi = least(hi, target + width)
--   keep band_lo <= ema_pass_rate <= band_hi
--
-- so a policy that solves 80% of its recent batches gets prompts it has
-- solved 5–45% of the time, one at 50% gets 25–75%; lo and hi keep out the
-- prompts that are always solved or never (no GRPO signal). Output:
-- prompt_id, ema_pass_rate, attempts, band_lo, band_hi (DOUBLE) and distance
-- = |ema_pass_rate - target| (closest to the target first is a good order).
CREATE OR REPLACE MACRO sweet_spot_band(level, width := 0.25, lo := 0.05, hi := 0.95) AS TABLE
WITH b AS (
    SELECT 1.0 - coalesce(CAST(level AS DOUBLE), 0.5) AS target,
           greatest(CAST(lo AS DOUBLE), 1.0 - coalesce(CAST(level AS DOUBLE), 0.5) - width) AS band_lo,
           least(CAST(hi AS DOUBLE), 1.0 - coalesce(CAST(level AS DOUBLE), 0.5) + width) AS band_hi
)
SELECT s.prompt_id, s.ema_pass_rate, s.attempts, b.band_lo, b.band_hi,
       abs(s.ema_pass_rate - b.target) AS distance
FROM prompt_stats AS s, b
WHERE s.ema_pass_rate BETWEEN b.band_lo AND b.band_hi;
