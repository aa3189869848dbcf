-- rljob slurm test pipeline, the sharded file: per step one completion for
-- each of eight prompts, right for about half of them (by a hash of prompt
-- and step), scored by the sharded reward stage.
CREATE OR REPLACE TABLE samples AS
SELECT 'p' || i || '/' || getvariable('step') AS rollout_id, 'p' || i AS prompt_id, 0 AS sample_idx,
       'what is ' || i AS prompt,
       CASE WHEN hash(i, getvariable('step')) % 2 = 0 THEN CAST(i AS VARCHAR) ELSE 'wrong' END AS completion,
       CAST(i AS VARCHAR) AS answer, 'train' AS tag
FROM range(8) t(i)
ORDER BY rollout_id;
CALL save(source := 'samples', output := 'rollouts');
CALL reward(verifier := 'exact');
