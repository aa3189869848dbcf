-- examples/recipes/passk_eval.sql — large-k evaluation of the latest
-- checkpoint: pass@k for k = 1, 2, 4, ..., 256 and coverage@512 on a fixed
-- set of held-out arith prompts (make compare, finding F3, F5, F8, F9).
--
--   rljob run examples/recipes/passk_eval.sql --lake L --run R --seed 1
--
-- One step of the run. The prompts: the first passk_prompts (default 100)
-- test-split prompts in md5(prompt) order, a choice fixed in advance by the
-- prompt text alone (the same prompts in every run, arm and seed: arith's
-- problems and split are hash-based, see examples/arith/prepare.sql). Each
-- gets passk_n (default 512) samples at temperature 1 (max_new_tokens 8,
-- tag 'evalk', so neither prompt_stats nor eval.sql's queries see them),
-- scored by the exact verifier. Outputs:
--   lake table passk_counts: per prompt prompt_id, n, c (correct samples),
--     policy_step (the evaluated checkpoint), one row per prompt and step
--   metrics val/arith_k/pass@K (K = 1, 2, 4, ..., 256: the mean over prompts
--     of the unbiased estimator 1 − C(n−c, K) / C(n, K), sql/lib pass_at_k,
--     computed in its stable product form), val/arith_k/coverage@512 (the
--     share of prompts with c > 0), val/arith_k/prompts, val/arith_k/n and
--     val/arith_k/policy_step.
CREATE OR REPLACE TABLE passk_prompts AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'test'
ORDER BY md5(prompt), prompt
LIMIT coalesce(CAST(getvariable('passk_prompts') AS BIGINT), 100);

CALL rollout(prompts := 'passk_prompts', policy := 'latest',
             n := coalesce(CAST(getvariable('passk_n') AS BIGINT), 512),
             temperature := 1.0, max_new_tokens := 8, tag := 'evalk');
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE passk_groups AS
SELECT prompt_id, count(*) AS n, count_if(correct) AS c, any_value(policy_step) AS policy_step
FROM this_step_scored
WHERE tag = 'evalk'
GROUP BY prompt_id;

CALL save(query := 'SELECT prompt_id, n, c, policy_step FROM passk_groups ORDER BY prompt_id', output := 'passk_counts');

-- k = 2^j for j = 0..8, only where every prompt has at least k samples. The
-- means are ordered aggregates: in prompt_id order, so the same bits on every
-- rerun (a plain avg sums in the order the hash aggregate hands rows over,
-- which varied in the last bit between two runs of make compare).
CREATE OR REPLACE TABLE passk_metrics AS
SELECT 'val/arith_k/pass@' || CAST(k AS VARCHAR) AS name, avg(pass_at_k(n, c, k) ORDER BY prompt_id) AS value
FROM passk_groups, (SELECT CAST(2 ** j AS BIGINT) AS k FROM range(9) AS t(j))
WHERE k <= (SELECT min(n) FROM passk_groups)
GROUP BY k
UNION ALL SELECT 'val/arith_k/coverage@' || CAST(min(n) AS VARCHAR), avg(CASE WHEN c > 0 THEN 1.0 ELSE 0.0 END ORDER BY prompt_id) FROM passk_groups
UNION ALL SELECT 'val/arith_k/prompts', count(*) FROM passk_groups
UNION ALL SELECT 'val/arith_k/n', min(n) FROM passk_groups
UNION ALL SELECT 'val/arith_k/policy_step', max(policy_step) FROM passk_groups;

CALL log_metrics(query := 'SELECT name, value FROM passk_metrics');
