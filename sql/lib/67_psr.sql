-- psr_advantages(t): Positive Sample Reinforcement (Zhu et al. 2025, "The
-- Surprising Effectiveness of Negative Reinforcement in LLM Reasoning",
-- arXiv:2506.01347), the mirror of nsr_advantages (63_w_reinforce.sql):
-- only the correct rollouts of t, each with advantage +1, so the update
-- only raises the probability of correct completions. The incorrect rows
-- (NULL correct counts as not correct) would carry advantage 0 (no
-- gradient, but they would count in a token-mean denominator), so they are
-- left out. Output: every column of t (an earlier advantage column
-- replaced), then advantage DOUBLE.
CREATE OR REPLACE MACRO psr_advantages(t) AS TABLE
SELECT * FROM w_reinforce_advantages(t, lam := 1.0)
WHERE coalesce(correct, false);
