-- examples/recipes/critique.sql — critique/refine GRPO (Critique-GRPO, Zhang
-- et al. 2025, arXiv:2506.03106; Cog-Rethinker, 2025): the policy answers,
-- the environment gives the answer's verdict, a wrong answer gets a second
-- attempt with the verdict in its context, and the update learns from the
-- first attempts and the refinements together.
--
--   rljob run examples/recipes/critique.sql --lake L --run R --seed 1 --steps 24
--
-- Per step: prompts_per_step (default 32) uniform train prompts, n (default
-- 8) episodes each at temperature 1 with env := 'sql:critique_verdict'
-- (sql/lib/66_critique.sql), max_turns 2: turn 0 is the answer (at most 8
-- tokens, as in baseline.sql); a right one ends the episode, a wrong one is
-- answered '<|unk|>' (the verdict "wrong, try again") and the prompt
-- restated, and the policy writes turn 1. Each turn's reward is the exact
-- rule on that turn's text (1 right, 0 wrong), recorded in turns.reward.
-- critique_turn_rows makes one training row per policy turn (the episode's
-- tokens, policy_mask limited to that turn, reward = the turn's reward), and
-- grpo_advantages groups a prompt's first attempts and refinements together
-- (Critique-GRPO's mixed group): a right first attempt, or a right
-- refinement, is pushed up against the group's mean; the verdict tokens are
-- never trained on. The episode's reward in the rewards table (what
-- train/reward_mean shows) is the final answer's: the last turn's text,
-- exact verifier. Rollouts spent = sampled policy turns: 256 first attempts
-- + one per wrong first attempt (see README: equal rollouts).
INCLUDE 'core/uniform_batch.sql';

CALL rollout(prompts := 'batch', n := coalesce(getvariable('n'), 8), temperature := 1.0,
             max_new_tokens := 23, max_turn_tokens := 8, env := 'sql:critique_verdict', max_turns := 2);

-- the episode's reward: its final answer (the last turn's text), exact verifier
CREATE OR REPLACE TABLE final_answers AS
SELECT r.rollout_id, r.prompt_id, t.text AS completion, r.answer
FROM this_step_rollouts AS r
JOIN this_step_turns AS t ON t.rollout_id = r.rollout_id AND t.turn = r.num_turns - 1;
CALL reward(verifier := 'exact', rollouts := 'final_answers');

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE turn_rows AS SELECT * FROM critique_turn_rows('this_step', 'this_step_turns');
CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('turn_rows');

CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'critique/first_correct' AS name, avg(reward) FILTER (turn = 0) AS value FROM train_batch
UNION ALL SELECT 'critique/refinements', count(*) FILTER (turn = 1) FROM train_batch
UNION ALL SELECT 'critique/refine_correct', avg(reward) FILTER (turn = 1) FROM train_batch
UNION ALL SELECT 'critique/policy_turns', count(*) FROM train_batch
UNION ALL SELECT 'train/groups_informative', count(DISTINCT prompt_id) FILTER (group_std > 0) FROM train_batch;

INCLUDE 'core/grpo_update.sql';
