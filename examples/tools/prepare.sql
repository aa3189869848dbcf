-- examples/tools/prepare.sql — step 0 of a tools run: the problems and two
-- fresh policies' data.
--
-- The task: a 4-digit number times a 2-digit one, '4567*89=' → '406463':
-- far beyond what the tiny model computes in its head, trivial with a
-- calculator. Problems are hash-generated (the same on any machine, whatever
-- --seed is) and split by a hash of their text: about 10% test.
CREATE OR REPLACE TABLE tool_problems AS
WITH raw AS (
    SELECT k,
           CAST(md5_number('tools/' || k || '/a') % 9000 + 1000 AS BIGINT) AS a,
           CAST(md5_number('tools/' || k || '/b') % 90 + 10 AS BIGINT) AS b
    FROM range(3000) AS t(k)
)
SELECT 'tools-' || substr(md5(prompt), 1, 16) AS prompt_id, prompt, answer, 'mul' AS task,
       CASE WHEN md5_number('split/' || prompt) % 10 = 0 THEN 'test' ELSE 'train' END AS split
FROM (SELECT k, CAST(a AS VARCHAR) || '*' || CAST(b AS VARCHAR) || '=' AS prompt, CAST(a * b AS VARCHAR) AS answer FROM raw)
QUALIFY row_number() OVER (PARTITION BY prompt ORDER BY k) = 1
ORDER BY prompt_id;

CALL save(query := 'SELECT * FROM tool_problems', output := 'prompts');

-- A character tokenizer over the task's and the tool's symbols.
CALL init_policy(config := 'config.json', tokenizer := 'chars:0123456789*=<>/acelrstu');
