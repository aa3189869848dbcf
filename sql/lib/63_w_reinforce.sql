-- w_reinforce_advantages(t, lam := 0.1): Weighted-REINFORCE (Zhu et al.
-- 2025, "The Surprising Effectiveness of Negative Reinforcement in LLM
-- Reasoning", arXiv:2506.01347). Rewards are +1 (correct) / -1 (not), there
-- is no baseline, and the positive samples' term is scaled down by λ:
--
--   advantage = lam  when correct          (PSR, positive sample reinforcement)
--             = -1   otherwise (NULL correct counts as not correct: NSR)
--
-- lam = 1 is plain REINFORCE with ±1 rewards, lam = 0 is NSR (negative
-- samples only; see nsr_advantages), the paper recommends lam = 0.1.
-- Output: every column of t (an earlier advantage column replaced), then
-- advantage DOUBLE.
CREATE OR REPLACE MACRO w_reinforce_advantages(t, lam := 0.1) AS TABLE
SELECT COLUMNS(lambda c: c <> 'advantage'),
       CAST(CASE WHEN coalesce(correct, false) THEN lam ELSE -1.0 END AS DOUBLE) AS advantage
FROM query_table(t);

-- nsr_advantages(t): Negative Sample Reinforcement (same paper): only the
-- incorrect rollouts of t, each with advantage -1, so the update only
-- lowers the probability of wrong completions and redistributes that mass
-- over the alternatives in proportion to their current probability. The
-- correct rows would carry advantage 0 (no gradient, but they would count
-- in a token-mean denominator), so they are left out.
CREATE OR REPLACE MACRO nsr_advantages(t) AS TABLE
SELECT * FROM w_reinforce_advantages(t, lam := 0.0)
WHERE NOT coalesce(correct, false);
