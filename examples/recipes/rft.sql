-- examples/recipes/rft.sql — rejection-sampling fine-tuning (RFT: Yuan et
-- al. 2023, arXiv:2308.01825; STaR: Zelikman et al. 2022; RAFT: Dong et
-- al. 2023), the control that "A Minimalist Approach to LLM Reasoning"
-- (Xiong et al. 2025, arXiv:2504.11343) sets beside GRPO: sample like GRPO,
-- keep the policy's own correct samples, and fine-tune on them with plain
-- cross-entropy — no advantages, no negative samples.
--
--   rljob run examples/recipes/rft.sql --lake L --run R --seed 1 --steps 24
--
-- Per step: as baseline.sql's sampling (32 uniform prompts × 8 samples at
-- T = 1, max 8 new tokens, exact reward: core/grpo_step.sql), then ONE sft
-- update (epochs 1, one batch of all the kept rows) on the DISTINCT correct
-- completions of each prompt (RFT's de-duplicated reasoning paths, RAFT's
-- and STaR's one sample per solved problem: on arith every correct
-- completion is the answer, so one row per solved prompt), at lr (default
-- 5e-4, the baseline's), no warm-up, constant lr; sft appends EOS, so a
-- correct completion (its digits, then EOS) is trained on exactly the
-- tokens the policy sampled. Without the de-duplication this would be PSR
-- exactly (psr.sql: +1 on every correct row, token-mean, one update: the
-- same gradient as cross-entropy on those rows; measured: the same
-- checkpoints' pass@1 to the last digit). A step with no correct rollout
-- commits the policy unchanged. sft keeps its own AdamW moments across
-- steps. 256 rollouts per step.
INCLUDE 'core/uniform_batch.sql';
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE rft_batch AS
SELECT prompt, completion FROM this_step WHERE coalesce(correct, false)
QUALIFY row_number() OVER (PARTITION BY prompt_id, completion_tokens ORDER BY rollout_id) = 1
ORDER BY prompt_id, rollout_id;
SET VARIABLE rft_rows = (SELECT count(*) FROM rft_batch);

CALL sft(data := 'rft_batch', lr := coalesce(getvariable('lr'), 5e-4), epochs := 1, batch_size := greatest(1, getvariable('rft_rows')),
         warmup := 0, schedule := 'constant');

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'rft/kept_rows', getvariable('rft_rows');

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
