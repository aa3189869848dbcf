-- pass_at_k_advantages(t, k): the analytical pass@k advantage of Chen et
-- al. 2025 ("Pass@k Training for Adaptively Balancing Exploration and
-- Exploitation of Large Reasoning Models", arXiv:2508.10751, §3.3): the
-- expected advantage of each rollout when a group of n rollouts is split
-- into every k-subset, each subset scored by max (pass@k) and normalised
-- like GRPO — computed in closed form, so no subsets are drawn.
--
-- Groups: rows sharing (run, step, prompt_id); n = rows with a non-NULL
-- reward, c = those with correct = true, kk = least(k, n) (k is capped at
-- the group size), and
--
--   R     = pass_at_k(n, c, kk) = 1 - C(n - c, kk) / C(n, kk)   (the group's mean pass@k)
--   sigma = sqrt(R * (1 - R))
--   correct rollout:   advantage = (1 - R) / (sigma + 1e-6)
--   incorrect rollout: advantage = (1 - R - C(n - c - 1, kk - 1) / C(n - 1, kk - 1)) / (sigma + 1e-6)
--
-- C(n-c-1, kk-1)/C(n-1, kk-1) is the chance that the other kk - 1 members of
-- a subset holding this incorrect rollout are all incorrect; it is computed
-- as prod_{i=0..kk-2} (n-c-1-i)/(n-1-i) (0 when n - c - 1 < kk - 1, 1 when
-- kk = 1). With k = 1 this is GRPO with the population std (c/n, not N - 1).
-- An incorrect rollout in a group that already passes surely (n - c < kk)
-- gets advantage 0 (R = 1), like every rollout of an all-correct or
-- all-wrong group; the 1e-6 keeps those 0/0 at 0, as GRPO's does.
-- The advantages of a group sum to 0.
--
-- Output: every column of t (earlier advantage, group_size, group_mean,
-- group_std, group_pass_at_k columns are replaced), then advantage DOUBLE,
-- group_size BIGINT, group_mean DOUBLE (mean reward), group_std DOUBLE
-- (sample std of reward, N - 1, 0 for one row) and group_pass_at_k DOUBLE (R).
-- Rows with a NULL reward get a NULL advantage.
CREATE OR REPLACE MACRO pass_at_k_advantages(t, k) AS TABLE
WITH src AS (
    SELECT COLUMNS(lambda c: c NOT IN ('advantage', 'group_size', 'group_mean', 'group_std', 'group_pass_at_k'))
    FROM query_table(t)
),
stats AS (
    SELECT *,
           count(*) OVER grp AS __rl_size,
           count(reward) OVER grp AS __rl_n,
           count_if(correct AND reward IS NOT NULL) OVER grp AS __rl_c,
           avg(reward) OVER grp AS __rl_mean,
           coalesce(stddev_samp(reward) OVER grp, 0.0) AS __rl_std
    FROM src
    WINDOW grp AS (PARTITION BY run, step, prompt_id)
),
r AS (
    SELECT *,
           least(CAST(k AS BIGINT), __rl_n) AS __rl_k,
           pass_at_k(__rl_n, __rl_c, least(CAST(k AS BIGINT), __rl_n)) AS __rl_r
    FROM stats
),
adv AS (
    SELECT *,
           sqrt(__rl_r * (1.0 - __rl_r)) AS __rl_sigma,
           CASE WHEN __rl_k <= 1 THEN 1.0
                WHEN __rl_n - __rl_c - 1 < __rl_k - 1 THEN 0.0
                ELSE list_product(list_transform(range(0, __rl_k - 1),
                        lambda i: CAST(__rl_n - __rl_c - 1 - i AS DOUBLE) / CAST(__rl_n - 1 - i AS DOUBLE)))
           END AS __rl_allneg
    FROM r
)
SELECT * EXCLUDE (__rl_size, __rl_n, __rl_c, __rl_mean, __rl_std, __rl_k, __rl_r, __rl_sigma, __rl_allneg),
       CAST(CASE WHEN reward IS NULL THEN NULL
                 WHEN coalesce(correct, false) THEN (1.0 - __rl_r) / (__rl_sigma + 1e-6)
                 ELSE (1.0 - __rl_r - __rl_allneg) / (__rl_sigma + 1e-6) END AS DOUBLE) AS advantage,
       __rl_size AS group_size,
       CAST(__rl_mean AS DOUBLE) AS group_mean,
       CAST(__rl_std AS DOUBLE) AS group_std,
       CAST(__rl_r AS DOUBLE) AS group_pass_at_k
FROM adv;
