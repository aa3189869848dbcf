-- examples/recipes/core/grpo_step.sql — the sampling half of a GRPO step,
-- INCLUDEd by the recipes (docs/job-language-loops.md): group_size (a
-- recipe's SET VARIABLE, else --set n, else 8) samples at temperature 1 of
-- every prompt of the table batch (prompt_id, prompt, answer, task; other
-- columns are carried into the rollouts), at most 8 new tokens, scored by
-- the exact verifier; this_step is then this step's scored train rollouts.
CALL rollout(prompts := 'batch', n := coalesce(getvariable('group_size'), getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored WHERE tag = 'train';
