-- examples/arith/sft.sql — step 1 of an arith run: a short SFT warm-up.
--
-- Cross-entropy on the answer digits (the sft stage appends EOS) of a SMALL
-- subset of the train split: the first 500 train prompts in prompt_id (hash)
-- order. The aim is a policy that has learned the format and part of the
-- arithmetic — partial accuracy — so that RL (grpo.sql) has rewards to work
-- with and room to improve.
--
--   rljob run examples/arith/sft.sql --lake ./lake --run arith --seed 1
CREATE OR REPLACE TABLE sft_data AS
SELECT prompt, answer AS completion
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY prompt_id
LIMIT 1000;

CALL sft(data := 'sft_data', lr := 3e-3, epochs := 40, batch_size := 32, warmup := 10, schedule := 'constant');
