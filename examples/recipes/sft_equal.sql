-- examples/recipes/sft_equal.sql — equal-budget SFT, the control for "SFT
-- memorizes, RL generalizes" (Chu et al. 2025, arXiv:2501.17161) and for
-- "RL improves pass@1 over SFT": the same number of optimizer updates as
-- baseline.sql, each on the same number of sequences, but supervised on the
-- reference answers instead of reinforced on sampled ones.
--
--   rljob run examples/recipes/sft_equal.sql --lake L --run R --seed 1 --steps 32
--
-- Per step: prompts_per_step × n (defaults 32 × 8 = 256, the baseline's
-- sequences per update) DISTINCT train prompts in a fresh hash order every
-- step, each with its reference answer as the completion, and ONE sft update
-- (epochs 1, one batch of all of them) at lr (default 5e-4, the baseline's),
-- no warm-up, constant lr; sft keeps its own AdamW moments across steps.
-- Distinct prompts rather than 32 prompts × 8 copies: with a mean loss, 8
-- identical copies give the same gradient as one, so 32 × 8 would be a
-- 32-sequence update; 256 distinct answers are the strongest SFT update of
-- that size. Nothing is sampled: 0 rollouts per step, so compare.sh runs it
-- for as many steps as the baseline (budget mode U, updates).
CREATE OR REPLACE TABLE sft_batch AS
SELECT prompt, answer AS completion
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY hash(prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32) * coalesce(getvariable('n'), 8);
SET VARIABLE sft_rows = (SELECT count(*) FROM sft_batch);

CALL sft(data := 'sft_batch', lr := coalesce(getvariable('lr'), 5e-4), epochs := 1, batch_size := getvariable('sft_rows'),
         warmup := 0, schedule := 'constant');

CALL log_metrics(query := 'SELECT ''sft_equal/rows'' AS name, getvariable(''sft_rows'') AS value');
