-- examples/tools/eval.sql — held-out pass@1 of the latest policy, with the
-- calculator (tool := true) or without (tool := false): 4 samples per
-- test problem at temperature 1; a completion is right when it ends with the
-- answer (regex '([0-9]+)$': a result the calculator printed does not count).
CREATE OR REPLACE TABLE eval_prompts AS
SELECT prompt_id, prompt, answer, task FROM prompts
WHERE run = getvariable('run') AND split = 'test'
ORDER BY prompt_id
LIMIT coalesce(getvariable('eval_problems'), 100);

CALL rollout(prompts := 'eval_prompts', n := 4, temperature := 1.0, max_new_tokens := 56, tag := 'eval',
             env := 'calculator', stop := '</call>', max_turns := 2,
             when := coalesce(getvariable('tool'), true));
CALL rollout(prompts := 'eval_prompts', n := 4, temperature := 1.0, max_new_tokens := 8, tag := 'eval',
             when := NOT coalesce(getvariable('tool'), true));
CALL reward(verifier := 'regex', pattern := '([0-9]+)$');

CALL log_metrics(query := 'SELECT ''val/tools/pass@1'' AS name, avg(correct::DOUBLE) AS value FROM this_step_scored WHERE tag = ''eval''');
