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

-- hint_prompts(t, max_hint := NULL): the next hinted prompts of a step, for
-- hint-guided difficulty control (GHPO, Liu et al. 2025, arXiv:2507.10628:
-- a problem whose rollouts all fail gets part of the reference solution
-- appended to its prompt; SEELE, Li et al. 2025, arXiv:2509.06923: the hint
-- length adapts to the problem). t holds a step's scored rows with columns
-- prompt_id, prompt, answer, task, hint (the answer prefix already appended
-- to prompt; '' or NULL: none) and correct. Per prompt, its group with the
-- longest hint so far; when no row of that group is correct (NULL counts as
-- wrong), one row with a hint one character longer:
--
--   h      = coalesce(hint, '')
--   hint'  = left(answer, length(h) + 1)
--   prompt = left(prompt, length(prompt) - length(h)) || hint'
--   kept only while length(hint') < length(answer) (the policy always has
--   to produce the rest of the answer) and length(hint') <= max_hint
--
-- The verifier must still check the whole answer: score a hinted rollout as
-- hint || completion against answer. Output: prompt_id, prompt, answer, task,
-- hint VARCHAR, hint_len BIGINT.
CREATE OR REPLACE MACRO hint_prompts(t, max_hint := NULL) AS TABLE
WITH g AS (
    SELECT prompt_id, coalesce(hint, '') AS h,
           any_value(prompt) AS prompt, any_value(answer) AS answer, any_value(task) AS task,
           count_if(correct) AS c
    FROM query_table(t)
    GROUP BY prompt_id, coalesce(hint, '')
),
newest AS (
    SELECT * FROM g
    QUALIFY row_number() OVER (PARTITION BY prompt_id ORDER BY length(h) DESC) = 1
)
SELECT prompt_id,
       left(prompt, length(prompt) - length(h)) || left(answer, length(h) + 1) AS prompt,
       answer, task,
       left(answer, length(h) + 1) AS hint,
       CAST(length(h) + 1 AS BIGINT) AS hint_len
FROM newest
WHERE c = 0
  AND length(h) + 1 < length(answer)
  AND (max_hint IS NULL OR length(h) + 1 <= max_hint);
