-- reinforce_pp_baseline_advantages(t): REINFORCE++ with a group baseline
-- (Hu 2025, "REINFORCE++"; verl
-- compute_reinforce_plus_plus_baseline_outcome_advantage) over the table
-- named t. Two steps:
--
--   1. subtract the group mean, groups = (run, step, prompt_id):
--        x_i = r_i - mean_g               (a group of one: mean_g = 0, x_i = r_i)
--   2. whiten over the whole table, each rollout weighted by its number of
--      completion tokens w_i = len(completion_tokens) (NULL list: 0) — the
--      same as verl's masked_whiten over the tokens, where every token of
--      rollout i carries x_i:
--        mean_w = sum w*x / sum w
--        var_w  = sum w*(x - mean_w)^2 / (sum w - 1)        (unbiased, as verl)
--        advantage_i = (x_i - mean_w) / sqrt(var_w + 1e-8)
--
-- sum w <= 1 is an error (verl raises too). Output: every column of t, then
-- advantage, group_size, group_mean, group_std as in grpo_advantages
-- (group_mean: the group's real mean; group_std: sample std, 0 for one row).
CREATE OR REPLACE MACRO reinforce_pp_baseline_advantages(t) AS TABLE
WITH src AS (
    SELECT COLUMNS(lambda c: c NOT IN ('advantage', 'group_size', 'group_mean', 'group_std'))
    FROM query_table(t)
),
stats AS (
    SELECT *,
           count(*) OVER grp AS __rl_n,
           avg(reward) OVER grp AS __rl_mean,
           coalesce(stddev_samp(reward) OVER grp, 0.0) AS __rl_std,
           CAST(coalesce(len(completion_tokens), 0) AS DOUBLE) AS __rl_w
    FROM src
    WINDOW grp AS (PARTITION BY run, step, prompt_id)
),
centred AS (
    SELECT *, reward - CASE WHEN __rl_n = 1 THEN 0.0 ELSE __rl_mean END AS __rl_x
    FROM stats
),
weighted_mean AS (
    SELECT *,
           sum(__rl_w) OVER () AS __rl_wsum,
           sum(__rl_w * __rl_x) OVER () / sum(__rl_w) OVER () AS __rl_mean_w
    FROM centred
),
weighted_var AS (
    SELECT *,
           sum(__rl_w * (__rl_x - __rl_mean_w) * (__rl_x - __rl_mean_w)) OVER () / (__rl_wsum - 1) AS __rl_var_w
    FROM weighted_mean
)
SELECT * EXCLUDE (__rl_n, __rl_mean, __rl_std, __rl_w, __rl_x, __rl_wsum, __rl_mean_w, __rl_var_w),
       CAST(CASE WHEN __rl_wsum <= 1 THEN
                     error('reinforce_pp_baseline_advantages: need more than one completion token in total, got ' || CAST(__rl_wsum AS VARCHAR))
                 ELSE (__rl_x - __rl_mean_w) / sqrt(__rl_var_w + 1e-8) END AS DOUBLE) AS advantage,
       __rl_n AS group_size,
       CAST(__rl_mean AS DOUBLE) AS group_mean,
       CAST(__rl_std AS DOUBLE) AS group_std
FROM weighted_var;
