-- examples/qwen/grpo.sql — one GRPO step on GSM8K prompts (see README.md).
--
--   --set prompts=FILE     JSON lines {prompt_id, prompt, answer} (mkprompts writes them padded to a fixed length)
--   --set samples=4        samples per prompt (the group)
--   --set new_tokens=64    max_new_tokens
--   --set lora=16          train LoRA adapters of this rank (q,k,v,o,gate,up,down) instead of every weight
--   --set lr=1e-6
--   --set full_state_every=K  train's full_state_every (default 4, LoRA 16: docs/checkpoints.md)
--   --set keep_logits=false   (or 0) train computes the logits again in the backward (unset: kept for full
--                             fine-tuning when the memory budget holds them, 1.2 MB a token: docs/memory.md)
CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, 'gsm8k' AS task
FROM read_json(getvariable('prompts'), format = 'newline_delimited',
               columns = {prompt_id: 'VARCHAR', prompt: 'VARCHAR', answer: 'VARCHAR'})
ORDER BY prompt_id;

CALL rollout(prompts := 'batch', n := coalesce(getvariable('samples'), 4),
             max_new_tokens := coalesce(getvariable('new_tokens'), 64), temperature := 1.0);
CALL reward(verifier := 'gsm8k');

-- Every group trains (no group_std > 0 filter): the step's shape is fixed
-- whatever the rewards of a random stand-in.
CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step_scored');

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 1e-6),
           lora_rank := coalesce(getvariable('lora'), 0), max_new_tokens := coalesce(getvariable('new_tokens'), 64),
           full_state_every := getvariable('full_state_every'),
           keep_logits := getvariable('keep_logits')::BOOLEAN);
