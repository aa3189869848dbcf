-- dr_grpo_advantages(t): Dr. GRPO advantages (Liu et al. 2025, "Understanding
-- R1-Zero-Like Training: A Critical Perspective"): the GRPO advantage without
-- the division by the group's standard deviation,
--
--   advantage = r - mean_g          (a group of one: mean_g = 0, so r)
--
-- Exactly grpo_advantages(t, scale := 'none'); same output columns
-- (advantage, group_size, group_mean, group_std). Pair it with
-- loss_agg := 'seq-mean-token-sum-norm' in train for the full Dr. GRPO.
CREATE OR REPLACE MACRO dr_grpo_advantages(t) AS TABLE
SELECT * FROM grpo_advantages(t, scale := 'none');
