-- examples/recipes/critique_eval.sql — held-out pass@1 with the verdict as
-- feedback: 16 critique/refine episodes per test prompt at temperature 1
-- (env := 'sql:critique_verdict', max_turns 2, as critique.sql samples
-- them), tag 'eval'. Logs
--   val/critique/first@1     the first attempts' accuracy (no feedback yet:
--                            the same distribution as eval.sql's pass@1)
--   val/critique/feedback@1  the final answers' accuracy: right at once, or
--                            right on the second attempt after "wrong"
--   val/critique/policy_step the checkpoint evaluated
--
--   rljob run examples/recipes/critique_eval.sql --lake L --run R --seed 1
CREATE OR REPLACE TABLE eval_prompts AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'test'
ORDER BY prompt_id;

CALL rollout(prompts := 'eval_prompts', policy := 'latest', n := 16, temperature := 1.0, tag := 'eval',
             max_new_tokens := 23, max_turn_tokens := 8, env := 'sql:critique_verdict', max_turns := 2);

CREATE OR REPLACE TABLE final_answers AS
SELECT r.rollout_id, r.prompt_id, t.text AS completion, r.answer
FROM this_step_rollouts AS r
JOIN this_step_turns AS t ON t.rollout_id = r.rollout_id AND t.turn = r.num_turns - 1;
CALL reward(verifier := 'exact', rollouts := 'final_answers');

CREATE OR REPLACE TABLE eval_metrics AS
SELECT 'val/critique/first@1' AS name, avg(coalesce(reward, 0)) AS value FROM this_step_turns WHERE turn = 0
UNION ALL SELECT 'val/critique/feedback@1', avg(reward) FROM this_step_scored WHERE tag = 'eval'
UNION ALL SELECT 'val/critique/policy_step', max(policy_step) FROM this_step_scored WHERE tag = 'eval';

CALL log_metrics(query := 'SELECT name, value FROM eval_metrics');
