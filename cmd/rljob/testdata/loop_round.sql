-- One sampling round of loop_grpo.sql: the pool's prompts 2r-1 and 2r.
CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, task FROM pool WHERE k BETWEEN 2 * getvariable('round') - 1 AND 2 * getvariable('round');
CALL rollout(prompts := 'batch', n := 4, max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');
