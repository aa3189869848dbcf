-- A toy job for the CLI tests: 6 prompts a step, right answers for i % 3 = 0.
CREATE OR REPLACE TABLE samples AS
SELECT 'p' || i || '/' || getvariable('step') AS rollout_id, 'p' || i AS prompt_id, 0 AS sample_idx,
       'what is ' || i AS prompt,
       CASE WHEN i % 3 = 0 THEN CAST(i AS VARCHAR) ELSE 'wrong' END AS completion,
       CAST(i AS VARCHAR) AS answer, 'train' AS tag
FROM range(6) t(i)
ORDER BY rollout_id;

CALL save(source := 'samples', output := 'rollouts');
CALL reward(verifier := 'exact');
CALL log_metrics(query := 'SELECT ''accuracy'' AS name, avg(correct::DOUBLE) AS value FROM this_step_rewards');
