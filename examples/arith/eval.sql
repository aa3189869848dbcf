-- examples/arith/eval.sql — pass@k of the latest checkpoint on the test split.
--
--   rljob run examples/arith/eval.sql --lake ./lake --run arith --seed 1
--
-- One step of the run: 16 samples per test prompt at temperature 1, plus one
-- greedy sample, scored by the exact verifier, summarised with the unbiased
-- pass@k estimator (sql/lib pass_at_k) and committed to metrics as
--   val/arith/pass@1, val/arith/pass@4, val/arith/pass@16, val/arith/mean@16
--   val/arith/greedy_acc   (temperature 0, one sample per prompt)
--   val/arith/policy_step  (the checkpoint that was evaluated)
-- The rollouts are tagged 'eval', so prompt_stats (the curriculum) never sees
-- them. policy := 'latest' is the newest checkpoint before this step; to
-- evaluate another one write policy := 'step=K' (or a checkpoint folder).

CREATE OR REPLACE TABLE eval_prompts AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'test'
ORDER BY prompt_id;

CALL rollout(prompts := 'eval_prompts', policy := 'latest', n := 16, temperature := 1.0, max_new_tokens := 8, tag := 'eval');
CALL rollout(prompts := 'eval_prompts', policy := 'latest', n := 1, temperature := 0.0, max_new_tokens := 8, tag := 'eval');
CALL reward(verifier := 'exact');

-- Per prompt: n samples at temperature 1, c of them correct.
CREATE OR REPLACE TABLE eval_groups AS
SELECT prompt_id, count(*) AS n, count_if(correct) AS c, any_value(policy_step) AS policy_step
FROM this_step_scored
WHERE tag = 'eval' AND temperature > 0
GROUP BY prompt_id;

CREATE OR REPLACE TABLE eval_metrics AS
SELECT 'val/arith/pass@1' AS name, avg(pass_at_k(n, c, 1)) AS value FROM eval_groups
UNION ALL SELECT 'val/arith/pass@4', avg(pass_at_k(n, c, 4)) FROM eval_groups
UNION ALL SELECT 'val/arith/pass@16', avg(pass_at_k(n, c, 16)) FROM eval_groups
UNION ALL SELECT 'val/arith/mean@16', avg(c / n) FROM eval_groups
UNION ALL SELECT 'val/arith/policy_step', max(policy_step) FROM eval_groups
UNION ALL SELECT 'val/arith/greedy_acc', avg(correct::DOUBLE)
    FROM this_step_scored
    WHERE tag = 'eval' AND temperature = 0;

CALL log_metrics(query := 'SELECT name, value FROM eval_metrics');
