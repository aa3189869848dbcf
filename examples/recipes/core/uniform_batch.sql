-- examples/recipes/core/uniform_batch.sql — INCLUDEd by the recipes that
-- draw their prompts uniformly: batch = prompts_per_step (default 32) of
-- the run's train prompts in a fresh hash order every step.
CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY hash(prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);
