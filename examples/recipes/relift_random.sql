-- examples/recipes/relift_random.sql — the control of relift_fixed.sql:
-- the same GRPO step and the same SFT (relift_sft, default 8, rows per
-- step, reference answers, lr relift_lr (1e-3), 2 epochs, batch 8), but on train
-- prompts drawn uniformly (a hash order of their own every step), not
-- chosen by failure. Run it forked from the seed's SFT run.
--
--   rljob run examples/recipes/relift_random.sql --lake L --run relift_random-s1 --seed 1 --steps 32
--
-- relift_fixed.sql takes min(relift_sft, bucket size) rows; with the
-- defaults the bucket is larger than 8 (README "Fair set-ups"), so both
-- arms fit 8 SFT rows per step.
CREATE OR REPLACE TABLE sft_rows AS
SELECT prompt_id, prompt, answer AS completion
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY hash(prompt_id, getvariable('step'), 'relift_random'), prompt_id
LIMIT coalesce(getvariable('relift_sft'), 8);

INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS SELECT 'relift/sft_rows' AS name, count(*) AS value FROM sft_rows;

INCLUDE 'core/grpo_update.sql';
-- The step's SFT rows, kept in the lake table relift_sft (what was trained on).
CALL save(query := 'SELECT prompt_id, prompt, completion FROM sft_rows', output := 'relift_sft');
CALL sft(data := 'SELECT prompt, completion FROM sft_rows', lr := coalesce(getvariable('relift_lr'), 1e-3), epochs := 2, batch_size := 8,
         when := (SELECT count(*) > 0 FROM sft_rows));
