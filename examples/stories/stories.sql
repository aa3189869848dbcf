-- examples/stories/stories.sql — GRPO on a real pretrained model: llama2.c's
-- stories260K (260K parameters, TinyStories), loaded as it is from model/.
--
--   rljob run examples/stories/stories.sql --lake ./lake --run stories --seed 1 --steps 3
--
-- The task: continue a story opening that names its hero, and keep to that
-- hero. The reward is verifiable with a regular expression: the last
-- character name the continuation mentions (one of the names below) must be
-- the hero's; a continuation that names nobody, or someone else last, scores 0.
--
-- Each iteration (step S of the run):
--   0. step 0 only: the policy is the pretrained model folder model/
--      (config.json, model.safetensors, tokenizer.json), committed unchanged
--      as the run's first checkpoint.
--   1. rollout: 8 samples per opening at temperature 1, up to 48 tokens;
--      prompts are plain strings, so the prompt tokens are [BOS] + encode.
--   2. reward: regex verifier, the last name matched must equal answer.
--   3. advantages: GRPO, (r − mean_g) / (std_g + 1e-6) per group, and groups
--      whose 8 rewards are equal are dropped (no signal).
--   4. train: one on-policy PPO-clip update with clip-higher, lr 1e-4
--      (--set lr=X overrides it).
--   5. metrics: the mean reward over all rollouts and the share of groups kept.

CALL init_policy(policy := 'model', when := getvariable('step') = 0);

CREATE OR REPLACE TABLE batch AS
SELECT * FROM (VALUES
    ('lily-park',  'Once upon a time, there was a little girl named Lily. One day, Lily went to the park.', 'Lily'),
    ('tom-ball',   'Tom had a big red ball. He liked to play with it every day.',                           'Tom'),
    ('ben-dog',    'Ben was a happy boy. He had a dog named Max.',                                          'Ben'),
    ('sue-cake',   'Sue wanted to make a cake for her mom.',                                                'Sue'),
    ('tim-tree',   'Once upon a time, there was a boy named Tim. Tim saw a tall tree.',                     'Tim'),
    ('anna-bird',  'Anna found a little bird in the garden.',                                               'Anna'),
    ('sam-boat',   'Sam and his dad went to the lake with a boat.',                                         'Sam'),
    ('mia-toy',    'Mia had a new toy. She loved it very much.',                                            'Mia')
) AS t(prompt_id, prompt, answer);

CALL rollout(prompts := 'batch', policy := 'latest', n := 8, max_new_tokens := 48, temperature := 1.0);
CALL reward(verifier := 'regex', pattern := '\b(Lily|Tom|Ben|Max|Sue|Tim|Anna|Sam|Mia)\b');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored;

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM grpo_advantages('this_step')
WHERE group_std > 0;

CALL train(data := 'train_batch', policy := 'latest', lr := coalesce(getvariable('lr'), 1e-4), clip_low := 0.2, clip_high := 0.28);

CALL log_metrics(query := $$
    SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
    UNION ALL
    SELECT 'train/groups_kept', count(DISTINCT prompt_id) / 8 FROM train_batch
$$);
