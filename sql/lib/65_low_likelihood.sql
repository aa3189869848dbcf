-- correct_loglik(max_age := 1000000, src := 'scored'): how likely the policy found its own
-- correct answers, per prompt — for a low-likelihood focus (He et al. 2025,
-- "Rewarding the Unlikely: Lifting GRPO Beyond Distribution Sharpening",
-- arXiv:2506.02355: GRPO sharpens towards the correct answers the policy
-- already finds likely and neglects the unlikely ones, which is what
-- pass@k at large k needs; a curriculum that prefers prompts whose correct
-- rollouts were unlikely spends rollouts where they can still move
-- probability mass).
--
-- Over this run's stored train rollouts that were correct (scored, tag
-- 'train', correct, run = variable run, sampled at most max_age steps
-- before variable step when it is set), per prompt:
--
--   seq_logprob(rollout) = sum of its behaviour logprobs (log π of the
--                          whole completion at its sampling temperature)
--   mean_seq_logprob     = mean over the prompt's correct rollouts  DOUBLE
--   min_seq_logprob      = the least likely one                     DOUBLE
--   n_correct            = how many                                 BIGINT
--   last_step            = newest step among them                   BIGINT
--
-- src names the table read instead of scored (read with query_table, so
-- the macro binds when it is called, not when the library loads).
-- ORDER BY mean_seq_logprob puts the prompts whose correct answers the
-- policy found least likely first.
CREATE OR REPLACE MACRO correct_loglik(max_age := 1000000, src := 'scored') AS TABLE
SELECT prompt_id,
       CAST(avg(list_sum(logprobs)) AS DOUBLE) AS mean_seq_logprob,
       CAST(min(list_sum(logprobs)) AS DOUBLE) AS min_seq_logprob,
       CAST(count(*) AS BIGINT) AS n_correct,
       CAST(max(step) AS BIGINT) AS last_step
FROM query_table(src)
WHERE tag = 'train' AND correct
  AND (getvariable('run') IS NULL OR run = CAST(getvariable('run') AS VARCHAR))
  AND (getvariable('step') IS NULL OR CAST(getvariable('step') AS BIGINT) - step <= max_age)
GROUP BY prompt_id;
