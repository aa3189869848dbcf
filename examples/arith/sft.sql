-- examples/arith/sft.sql — step 1 of an arith run: a short SFT warm-up.
--
-- Cross-entropy on the answer digits (the sft stage appends EOS) of a SMALL
-- subset of the train split: the first 1000 of its 3,286 prompts in
-- prompt_id (hash) order, 40 epochs of batches of 32 (1,250 AdamW updates,
-- lr 3e-3 after 10 warm-up updates). The aim is a policy that has learned
-- the format and part of the arithmetic — partial accuracy (27–47%
-- pass@1, 36–54% greedy on the test split for --seed 1..3) — so that RL
-- (grpo.sql) has rewards to work with and room to improve. The number of
-- updates matters more than the number of examples: below about 800 the
-- model has not yet learned the units digit (it sits at chance, see
-- README.md); with 2,000 examples × 20 epochs it reaches 76% and leaves RL
-- little to do.
--
--   rljob run examples/arith/sft.sql --lake ./lake --run arith --seed 1
CREATE OR REPLACE TABLE sft_data AS
SELECT prompt, answer AS completion
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY prompt_id
LIMIT 1000;

-- epochs and lr are expressions, so a sweep needs no edited copies:
--   rljob run examples/arith/sft.sql ... --set sft_epochs=20 --set sft_lr=1e-3
-- full_state_every := 1: the warm-up's full state is written, because
-- eval.sql, grpo.sql and every fork of the run (examples/recipes/fork.sql)
-- load it from a new process; a light checkpoint would replay all 1,250
-- updates at each of those loads (docs/checkpoints.md).
CALL sft(data := 'sft_data', lr := coalesce(getvariable('sft_lr'), 3e-3), epochs := coalesce(getvariable('sft_epochs'), 40),
         batch_size := 32, warmup := 10, schedule := 'constant', full_state_every := 1);
