-- examples/tools/grpo.sql — one GRPO step with the calculator: 16 train
-- problems, 8 episodes each (call, result, answer), reward 1 when the
-- completion ends with the answer; groups whose rewards all agree are
-- dropped (group_std > 0). With --set tool=false the same step without the
-- calculator (text-only RL from the tool=false SFT start, as eval.sql's
-- tool=false): one turn of at most 8 tokens, the same reward.
CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, task FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY hash(prompt_id, getvariable('step'))
LIMIT 16;

CALL rollout(prompts := 'batch', n := 8, temperature := 1.0, max_new_tokens := 56,
             env := 'calculator', stop := '</call>', max_turns := 2,
             when := coalesce(getvariable('tool'), true));
CALL rollout(prompts := 'batch', n := 8, temperature := 1.0, max_new_tokens := 8,
             when := NOT coalesce(getvariable('tool'), true));
CALL reward(verifier := 'regex', pattern := '([0-9]+)$');

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM grpo_advantages('this_step_scored') WHERE group_std > 0;

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 1e-3), clip_high := 0.28);

CALL log_metrics(query := 'SELECT ''train/reward_mean'' AS name, avg(reward) AS value FROM this_step_scored');
