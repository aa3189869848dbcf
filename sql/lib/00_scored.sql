-- scored: every rollout joined with its rewards, one verifier per rollout.
--
--   scored = rollouts JOIN rewards ON (run, step, rollout_id)
--            [WHERE verifier = getvariable('train_verifier')]
--
-- Columns: every column of rollouts, in order (run, step, rollout_id,
-- prompt_id, sample_idx, policy_step, prompt, completion, prompt_tokens,
-- completion_tokens, logprobs, finish_reason, temperature, seed, tag,
-- created_at, then pass-through prompt columns such as answer and task),
-- followed by the reward columns verifier, reward, correct, extracted.
--
-- An inner join: a rollout with no reward yet is not in scored. Rewards
-- join on their own (run, step), which the reward stage sets to those of
-- the rollouts it scores.
--
-- Verifiers never mix silently: when the DuckDB variable train_verifier is
-- set (SET VARIABLE train_verifier = 'gsm8k' in the job), scored holds that
-- verifier's rewards only; when it is unset, a rollout scored by two
-- verifiers makes any query of scored fail with an error naming the
-- rollout and both verifiers (its GRPO group would otherwise hold every
-- sample twice, with two rewards). prompt_stats, the advantage macros fed
-- from scored, and this_step_scored follow. scored_all keeps every
-- verifier's rows side by side (a rollout scored by k verifiers appears k
-- times) for comparing verifiers.
CREATE OR REPLACE VIEW scored_all AS
SELECT ro.*, rw.verifier, rw.reward, rw.correct, rw.extracted
FROM rollouts AS ro
JOIN rewards AS rw
  ON ro.run = rw.run AND ro.step = rw.step AND ro.rollout_id = rw.rollout_id;

-- _one_verifier(src): the rows of rewards table src that scored keeps.
-- Runs whose rewards come from one verifier pass through (a cheap GROUP BY
-- run finds the others); only in a run with several verifiers and no
-- train_verifier does a window over (run, step, rollout_id) look for a
-- rollout scored twice.
CREATE OR REPLACE MACRO _one_verifier(src) AS TABLE
WITH mixed AS (
    SELECT run FROM query_table(src)
    WHERE getvariable('train_verifier') IS NULL
    GROUP BY run HAVING min(verifier) <> max(verifier)
)
SELECT run, step, rollout_id, verifier, reward, correct, extracted
FROM query_table(src)
WHERE CASE WHEN getvariable('train_verifier') IS NULL THEN run NOT IN (SELECT run FROM mixed)
           ELSE verifier = CAST(getvariable('train_verifier') AS VARCHAR) END
UNION ALL
SELECT run, step, rollout_id, verifier, reward, correct, extracted
FROM query_table(src)
WHERE run IN (SELECT run FROM mixed)
QUALIFY CASE
    WHEN min(verifier) OVER (PARTITION BY run, step, rollout_id) <> max(verifier) OVER (PARTITION BY run, step, rollout_id)
    THEN error('scored: rollout ' || rollout_id || ' of run ' || run || ' step ' || step || ' has rewards from two verifiers, '''
               || min(verifier) OVER (PARTITION BY run, step, rollout_id) || ''' and '''
               || max(verifier) OVER (PARTITION BY run, step, rollout_id)
               || ''', and scored would mix them: name the one that trains with SET VARIABLE train_verifier = '''
               || min(verifier) OVER (PARTITION BY run, step, rollout_id)
               || ''' in the job, or read scored_all, which keeps both')
    ELSE true END;

CREATE OR REPLACE VIEW scored AS
SELECT ro.*, rw.verifier, rw.reward, rw.correct, rw.extracted
FROM rollouts AS ro
JOIN _one_verifier('rewards') AS rw
  ON ro.run = rw.run AND ro.step = rw.step AND ro.rollout_id = rw.rollout_id;
