-- Multi-turn episodes for the crash test: a tiny policy (made at step 0),
-- a SQL environment that answers each turn with '=', the turn's length mod
-- 10 and '+' (reward: the length; done after turn 2), GRPO on the episodes.
CALL init_policy(config := 'tiny', tokenizer := 'chars:0123456789+=', seed := 7, when := getvariable('step') = 0);

CREATE OR REPLACE MACRO obs(prompt_id, turn, text, finish, transcript) AS
  {'observation': '=' || CAST(length(text) % 10 AS VARCHAR) || '+', 'reward': CAST(length(text) AS DOUBLE), 'done': turn >= 2};

CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, CAST(i AS VARCHAR) || '+' AS prompt, CAST(i AS VARCHAR) AS answer FROM range(4) t(i);

CALL rollout(prompts := 'batch', n := 2, max_new_tokens := 24, env := 'sql:obs', max_turns := 3, max_turn_tokens := 4, stop := '+');
CALL reward(verifier := 'regex', pattern := '^(.)');

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step_scored');
CALL train(data := 'train_batch', lr := 1e-2);
