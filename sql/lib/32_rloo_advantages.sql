-- rloo_advantages(t): REINFORCE Leave-One-Out (Ahmadian et al. 2024; verl
-- compute_rloo_outcome_advantage) over the table named t. Each rollout's
-- baseline is the mean reward of the other rollouts of its group
-- (run, step, prompt_id):
--
--   advantage = r_i - (sum_g r - r_i) / (n - 1)      (= n/(n-1) * (r_i - mean_g))
--   n = 1: advantage = r_i (no other sample, baseline 0)
--
-- Output: every column of t, then advantage, group_size, group_mean,
-- group_std as in grpo_advantages (group_std: sample std, N - 1; 0 for one
-- row). Rows with a NULL reward get a NULL advantage; n counts the non-NULL
-- rewards of the group.
CREATE OR REPLACE MACRO rloo_advantages(t) AS TABLE
WITH src AS (
    SELECT COLUMNS(lambda c: c NOT IN ('advantage', 'group_size', 'group_mean', 'group_std'))
    FROM query_table(t)
),
stats AS (
    SELECT *,
           count(*) OVER grp AS __rl_size,
           count(reward) OVER grp AS __rl_n,
           sum(reward) OVER grp AS __rl_sum,
           avg(reward) OVER grp AS __rl_mean,
           coalesce(stddev_samp(reward) OVER grp, 0.0) AS __rl_std
    FROM src
    WINDOW grp AS (PARTITION BY run, step, prompt_id)
)
SELECT * EXCLUDE (__rl_size, __rl_n, __rl_sum, __rl_mean, __rl_std),
       CAST(CASE WHEN __rl_n <= 1 THEN reward
                 ELSE reward - (__rl_sum - reward) / (__rl_n - 1) END AS DOUBLE) AS advantage,
       __rl_size AS group_size,
       CAST(__rl_mean AS DOUBLE) AS group_mean,
       CAST(__rl_std AS DOUBLE) AS group_std
FROM stats;
