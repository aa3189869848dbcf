-- examples/recipes/sft_format.sql — step 1 of a run `sftfmt-sN`, after
-- examples/arith/prepare.sql: an SFT warm-up that teaches the arithmetic but
-- mostly NOT the format the exact verifier wants, so the start has latent
-- ability for one-shot RLVR to unlock (issue 22 item 4; oneshot_fmt.sql).
--
--   rljob run examples/arith/prepare.sql    --lake L --run sftfmt-s1 --seed 1
--   rljob run examples/recipes/sft_format.sql --lake L --run sftfmt-s1 --seed 1
--
-- The data: the first 2,000 train prompts in prompt_id order (sft.sql uses
-- 1,000 × 40 epochs; 2,000 × 20 epochs is the same 1,250 AdamW updates and
-- learns more of the arithmetic, README "What I tried" in examples/arith).
-- A share fmt_exact (default 0.1, by a hash of the prompt, the same on every
-- machine and seed) is answered in the exact format ('085', then EOS); every
-- other answer is followed by one '=' before EOS ('085='), which the exact
-- verifier rejects. Sampled at T = 1 the start writes the right digits often
-- and the bare answer rarely: held-out pass@1 is low, the digits-correct rate
-- (README "Fair set-ups") and pass@16 high.
CREATE OR REPLACE TABLE sft_data AS
SELECT prompt,
       answer || CASE WHEN md5_number('fmt/' || prompt) % 1000 < 1000 * coalesce(getvariable('fmt_exact'), 0.1) THEN '' ELSE '=' END AS completion
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY prompt_id
LIMIT coalesce(getvariable('sft_problems'), 2000);

CALL sft(data := 'sft_data', lr := coalesce(getvariable('sft_lr'), 3e-3), epochs := coalesce(getvariable('sft_epochs'), 20),
         batch_size := 32, warmup := 10, schedule := 'constant');
