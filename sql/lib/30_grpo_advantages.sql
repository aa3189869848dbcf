-- grpo_advantages(t, scale := 'group'): GRPO outcome advantages over the
-- table named t (a string: grpo_advantages('this_step')), one per rollout.
--
-- Groups are the rows sharing (run, step, prompt_id); r is the reward column.
--
--   scale = 'group' (default, verl compute_grpo_outcome_advantage, TRL "group"):
--       advantage = (r - mean_g) / (std_g + 1e-6)
--   scale = 'batch' (TRL scale_rewards = "batch"):
--       advantage = (r - mean_g) / (std_batch + 1e-6)
--   scale = 'none'  (Dr. GRPO; verl norm_adv_by_std_in_grpo = False, TRL "none"):
--       advantage = r - mean_g
--
--   mean_g, std_g: mean and sample standard deviation (N - 1) of r over the
--     group; a group of one uses mean_g = 0, std_g = 1 (as verl does), so its
--     advantage is r / (1 + 1e-6) ('group'), r / (std_batch + 1e-6) ('batch')
--     or r ('none').
--   std_batch: sample standard deviation (N - 1) of r over every row of t;
--     1 when t has a single row.
--
-- Output: every column of t (earlier advantage, group_size, group_mean,
-- group_std columns are replaced), then
--   advantage  DOUBLE
--   group_size BIGINT  rows in the group
--   group_mean DOUBLE  mean reward of the group (for one row: that reward)
--   group_std  DOUBLE  sample std (N - 1) of the group; 0 for one row
-- group_mean and group_std describe the group as it is; the group-of-one
-- convention above only enters the advantage. Filters are one WHERE: DAPO
-- dynamic sampling keeps group_std > 0 OR group_size = 1.
-- Rows with a NULL reward get a NULL advantage and are left out of the means
-- and deviations (but counted in group_size).
CREATE OR REPLACE MACRO grpo_advantages(t, scale := 'group') AS TABLE
WITH src AS (
    SELECT COLUMNS(lambda c: c NOT IN ('advantage', 'group_size', 'group_mean', 'group_std'))
    FROM query_table(t)
),
stats AS (
    SELECT *,
           count(*) OVER grp AS __rl_n,
           avg(reward) OVER grp AS __rl_mean,
           coalesce(stddev_samp(reward) OVER grp, 0.0) AS __rl_std,
           coalesce(stddev_samp(reward) OVER (), 1.0) AS __rl_std_batch
    FROM src
    WINDOW grp AS (PARTITION BY run, step, prompt_id)
)
SELECT * EXCLUDE (__rl_n, __rl_mean, __rl_std, __rl_std_batch),
       CAST(CASE scale
           WHEN 'group' THEN (reward - CASE WHEN __rl_n = 1 THEN 0.0 ELSE __rl_mean END)
                             / (CASE WHEN __rl_n = 1 THEN 1.0 ELSE __rl_std END + 1e-6)
           WHEN 'batch' THEN (reward - CASE WHEN __rl_n = 1 THEN 0.0 ELSE __rl_mean END)
                             / (__rl_std_batch + 1e-6)
           WHEN 'none'  THEN reward - CASE WHEN __rl_n = 1 THEN 0.0 ELSE __rl_mean END
           ELSE error('grpo_advantages: scale must be ''group'', ''batch'' or ''none'', got ' || coalesce(CAST(scale AS VARCHAR), 'NULL'))
       END AS DOUBLE) AS advantage,
       __rl_n AS group_size,
       CAST(__rl_mean AS DOUBLE) AS group_mean,
       CAST(__rl_std AS DOUBLE) AS group_std
FROM stats;
