-- examples/recipes/relift_fixed.sql — ReLIFT (Ma et al. 2025,
-- arXiv:2506.07527) with the hard bucket fixed in advance: plain GRPO
-- (baseline.sql) plus, every step, SFT on reference answers of prompts the
-- SFT start fails on. Run it forked from the seed's SFT run.
--
--   rljob run examples/recipes/relift_fixed.sql --lake L --run relift_fixed-s1 --seed 1 --steps 32
--
-- The bucket: at the run's first step, before any update, core/probe.sql
-- samples the forked start policy on probe_prompts (default 256) train
-- prompts × 8 (tagged 'probe': an evaluation of the start, not train
-- rollouts); the bucket is those with 0 correct of 8. The probe's rollouts
-- and rewards stay in the lake (tag 'probe', step 1 only), so every step
-- recomputes the same bucket from them: neither the baseline's run nor this
-- run's training chooses it.
-- Each step: a baseline.sql GRPO step (prompts_per_step uniform prompts × n,
-- one update), then sft on relift_sft (default 8) bucket prompts in a fresh
-- hash order every step, their reference answers as completions, lr
-- relift_lr (default 1e-3), 2 epochs, batch 8 (examples/arith/relift.sql's
-- settings). The control with the same SFT rows on random train prompts is
-- relift_random.sql.
INCLUDE 'core/probe.sql';
CREATE OR REPLACE TABLE relift_bucket AS SELECT * FROM probe WHERE c = 0;

CREATE OR REPLACE TABLE sft_rows AS
SELECT prompt_id, prompt, answer AS completion
FROM relift_bucket
ORDER BY hash(prompt_id, getvariable('step')), prompt_id
LIMIT coalesce(getvariable('relift_sft'), 8);

INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'relift/sft_rows' AS name, count(*) AS value FROM sft_rows
UNION ALL SELECT 'relift/bucket_size', count(*) FROM relift_bucket;

INCLUDE 'core/grpo_update.sql';
-- The step's SFT rows, kept in the lake table relift_sft (what was trained on).
CALL save(query := 'SELECT prompt_id, prompt, completion FROM sft_rows', output := 'relift_sft');
CALL sft(data := 'SELECT prompt, completion FROM sft_rows', lr := coalesce(getvariable('relift_lr'), 1e-3), epochs := 2, batch_size := 8,
         when := (SELECT count(*) > 0 FROM sft_rows));
