-- examples/gsm8k/gsm8k.sql — score GSM8K's reference solutions with the gsm8k verifier.
--
-- GSM8K (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems",
-- arXiv:2110.14168): grade-school math word problems whose reference solution
-- ends with "#### <number>". Before any model exists, this job exercises the
-- whole data plane: import with DuckDB's read_json, commit to the lake
-- (save), score with a verifier (reward), aggregate in SQL (log_metrics).
-- The reference solutions are scored as if a policy had written them, so the
-- expected accuracy is 1.0.
--
--   rljob run examples/gsm8k/gsm8k.sql --lake /tmp/lake --set data=../shared/data/gsm8k/test.jsonl
--   rljob run examples/gsm8k/gsm8k.sql --lake /tmp/lake --set data=examples/gsm8k/sample.jsonl
--
-- Paths are relative to the directory rljob runs in (the repository root).

-- The data file: --set data=PATH, else the full test set beside the repository.
SET VARIABLE data = coalesce(getvariable('data'), '../shared/data/gsm8k/test.jsonl');

-- 1. Prompts. prompt_id is a content hash of the question, so it is stable
--    across reruns and file orders; answer is the number after '####'
--    (thousands commas removed); the full reference solution passes through
--    as column solution.
CREATE OR REPLACE TABLE gsm8k AS
SELECT
    'gsm8k-' || substr(md5(question), 1, 16)                                AS prompt_id,
    question                                                                AS prompt,
    replace(trim(regexp_extract(answer, '####\s*([^\n]+)\s*$', 1)), ',', '') AS answer,
    'gsm8k'                                                                 AS task,
    'test'                                                                  AS split,
    answer                                                                  AS solution
FROM read_json(getvariable('data'), format = 'newline_delimited',
               columns = {question: 'VARCHAR', answer: 'VARCHAR'})
ORDER BY prompt_id;

-- Commit the prompts once, at step 0 (later steps select no rows: a no-op).
CALL save(query := 'SELECT * FROM gsm8k WHERE getvariable(''step'') = 0', output := 'prompts');

-- 2. "Rollouts": one per prompt, the reference solution as the completion.
CREATE OR REPLACE TABLE reference_rollouts AS
SELECT
    prompt_id || '/ref'   AS rollout_id,
    prompt_id,
    0::INTEGER            AS sample_idx,
    -1::BIGINT            AS policy_step,
    prompt,
    solution              AS completion,
    'stop'                AS finish_reason,
    'eval'                AS tag,
    answer,
    task
FROM this_step_prompts
ORDER BY prompt_id;

CALL save(source := 'reference_rollouts', output := 'rollouts');

-- 3. Score this step's rollouts: the last '#### N' in the completion against answer.
CALL reward(verifier := 'gsm8k');

-- 4. Accuracy and counts of this step, long format.
CREATE OR REPLACE TABLE step_metrics AS
SELECT 'accuracy' AS name, avg(correct::DOUBLE) AS value FROM this_step_rewards
UNION ALL
SELECT 'scored', count(*)::DOUBLE FROM this_step_rewards;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
