-- A GRPO step written with loops, for the kill/resume test of loops
-- (loops_test.go): three sampling rounds of 2 prompts × 4 samples in a FOR
-- loop (INCLUDEd), then updates in a WHILE loop until two train calls ran.
CREATE OR REPLACE TABLE pool AS
SELECT prompt_id, prompt, answer, task, row_number() OVER (ORDER BY hash(prompt_id, getvariable('step'))) AS k
FROM prompts WHERE run = getvariable('run') AND split = 'train';

FOR round IN 1..3 DO
  INCLUDE 'loop_round.sql';
END FOR;

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');

WHILE (SELECT count(*) FROM this_step_calls WHERE stage = 'train') < 2 MAX 3 DO
  CALL train(data := 'train_batch', lr := 5e-4);
END WHILE;

CALL log_metrics(query := 'SELECT ''rollouts'' AS name, count(*)::DOUBLE AS value FROM this_step');
