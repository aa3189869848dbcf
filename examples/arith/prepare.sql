-- examples/arith/prepare.sql — step 0 of an arith run: the data set and a fresh policy.
--
-- The task: 2-digit addition and subtraction written as a prompt like
-- '47+38=' whose ground-truth answer is the result as three digits, zero-padded
-- ('085'; 91-37= → '054'). Subtraction puts the larger operand first, so every
-- answer is in 000..198. A completion is graded by the exact verifier
-- (whitespace-normalised string equality), so the reward is 1 or 0.
--
-- Why zero-padded: with a fixed-width answer, every answer digit sits at a
-- fixed distance from the operand digits it depends on, which a 2-layer
-- model finds by relative (RoPE) position. With the natural '85' (and with
-- 3-digit operands) the tiny CPU model did not learn the units digit in the
-- time budget at all (it stayed at chance, 1 in 10: see README.md).
--
--   rljob run examples/arith/prepare.sql --lake ./lake --run arith --seed 1
--
-- Generation is hash-based, not random(): operand i of problem k is
-- md5_number('arith/<k>/<i>') mod 90 + 10, so the same problems come out on
-- any machine, DuckDB version or thread count, whatever --seed is (the seed
-- only changes the model's initialisation and sampling). Problems are
-- deduplicated by their text and split by a hash of the text, so a problem
-- is never in both splits: md5_number('split/' || prompt) mod 10 = 0 → test
-- (about 10%), else train.
--
-- A step holds one checkpoint, so this job (init_policy) and sft.sql (the
-- warm-up) run as two steps of the same run: prepare.sql at step 0, sft.sql
-- at step 1. Run it once: init_policy refuses a run that already has
-- checkpoints.

-- 1. Problems: 4400 candidates, deduplicated → 3,286 train and 363 test.
CREATE OR REPLACE TABLE arith_problems AS
WITH raw AS (
    SELECT k,
           CAST(md5_number('arith/' || k || '/a') % 90 + 10 AS BIGINT) AS x,
           CAST(md5_number('arith/' || k || '/b') % 90 + 10 AS BIGINT) AS y,
           CASE WHEN md5_number('arith/' || k || '/op') % 2 = 0 THEN '+' ELSE '-' END AS op
    FROM range(4400) AS t(k)
),
ops AS (
    SELECT k, op,
           CASE WHEN op = '-' THEN greatest(x, y) ELSE x END AS a,
           CASE WHEN op = '-' THEN least(x, y) ELSE y END AS b
    FROM raw
),
texts AS (
    SELECT CAST(a AS VARCHAR) || op || CAST(b AS VARCHAR) || '=' AS prompt,
           lpad(CAST(CASE WHEN op = '+' THEN a + b ELSE a - b END AS VARCHAR), 3, '0') AS answer,
           k
    FROM ops
)
SELECT 'arith-' || substr(md5(prompt), 1, 16)                                 AS prompt_id,
       prompt,
       answer,
       'arith'                                                               AS task,
       CASE WHEN md5_number('split/' || prompt) % 10 = 0 THEN 'test' ELSE 'train' END AS split
FROM texts
QUALIFY row_number() OVER (PARTITION BY prompt ORDER BY k) = 1
ORDER BY prompt_id;

-- Commit them (the prompts view then holds them for every later step).
CALL save(query := 'SELECT * FROM arith_problems', output := 'prompts');

-- 2. A fresh policy with a character tokenizer over the task's symbols
--    (digits, '+', '-', '='; the stage adds <|pad|> <|bos|> <|eos|> <|unk|>).
--    The model: examples/arith/config.json (see the README for why that size).
CALL init_policy(config := 'config.json', tokenizer := 'chars:0123456789+-=');
