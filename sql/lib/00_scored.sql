-- scored: every rollout joined with its rewards.
--
--   scored = rollouts JOIN rewards ON (run, step, rollout_id)
--
-- Columns: every column of rollouts, in order (run, step, rollout_id,
-- prompt_id, sample_idx, policy_step, prompt, completion, prompt_tokens,
-- completion_tokens, logprobs, finish_reason, temperature, seed, tag,
-- created_at, then pass-through prompt columns such as answer and task),
-- followed by the reward columns verifier, reward, correct, extracted.
--
-- An inner join: a rollout with no reward yet is not in scored. A rollout
-- scored by k verifiers appears k times; filter on verifier when a job uses
-- more than one. Rewards join on their own (run, step), which the reward
-- stage sets to those of the rollouts it scores.
CREATE OR REPLACE VIEW scored AS
SELECT ro.*, rw.verifier, rw.reward, rw.correct, rw.extracted
FROM rollouts AS ro
JOIN rewards AS rw
  ON ro.run = rw.run AND ro.step = rw.step AND ro.rollout_id = rw.rollout_id;
