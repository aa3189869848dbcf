-- A training job for the crash test: step 0 starts a tiny policy, every
-- later step samples, scores and trains LoRA adapters (adapter-only
-- checkpoints naming the step-0 base; with full_state_every := 3 those of
-- steps 1, 2 are light, 3 full, 4, 5 light).
CALL init_policy(config := 'tiny', tokenizer := 'chars:0123456789+=', seed := 1, when := getvariable('step') = 0);
CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, CAST(i AS VARCHAR) || '+1=' AS prompt, CAST(i + 1 AS VARCHAR) AS answer FROM range(4) t(i);
CALL rollout(prompts := 'batch', n := 2, max_new_tokens := 3, when := getvariable('step') > 0);
CALL reward(verifier := 'regex', pattern := '^(.)', when := getvariable('step') > 0);
CREATE OR REPLACE TABLE tb AS SELECT * FROM grpo_advantages('this_step_scored');
CALL train(data := 'tb', lr := 1e-2, lora_rank := 2, lora_targets := 'q,v,down', full_state_every := 3, when := getvariable('step') > 0);
