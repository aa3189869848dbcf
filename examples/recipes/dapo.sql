-- examples/recipes/dapo.sql — DAPO (Yu et al. 2025, "DAPO: An Open-Source
-- LLM Reinforcement Learning System at Scale", arXiv:2503.14476) on arith:
-- dynamic sampling that refills until the batch is full, clip-higher,
-- token-mean loss and soft overlong punishment.
--
--   rljob run examples/recipes/dapo.sql --lake L --run R --seed 1 --steps 16
--
-- Per step (G = prompts_per_step, default 32; n = 8 samples per prompt):
--   1. pool: the train prompts in a fresh uniform order (hash of prompt_id
--      and step), numbered k = 1, 2, ...
--   2. a WHILE loop (docs/job-language-loops.md) of sampling rounds, while
--      fewer than G informative groups are kept (informative_groups: reward
--      std > 0, sql/lib/61_informative_groups.sql), the pool is not used up
--      and fewer than max_gen_batches (default 10, DAPO/verl's
--      max_num_gen_batches) rounds ran: rollout + reward on the next prompts
--      of the pool — G in the first round, then refill_prompts(G, kept,
--      sampled): enough to reach G informative groups at the informative
--      rate seen so far this step, ceil((G − kept) · sampled / kept), at most
--      2G (2G when none is kept yet). reward scores only this step's
--      rollouts it has not scored yet (its default), so each round scores
--      just its own samples; a step still short of G after the last round
--      trains on what it has;
--   3. overlong shaping: reward + overlong_penalty(len, 8, 4, 1.0)
--      (sql/lib/40_overlong_penalty.sql; max_new_tokens 8, a 4-token buffer:
--      a correct answer is 3 digits + EOS = 4 tokens, every token past that
--      costs 0.25), then GRPO advantages on the shaped reward of the kept
--      groups (the filter looks at correctness, as DAPO's does);
--   4. train (core/grpo_update.sql): clip_low 0.2, clip_high 0.28 (clip-higher),
--      token-mean, --set updates_per_step minibatches (default 2: ρ leaves 1 and
--      the asymmetric clip acts on the second; 1: one on-policy update), lr 5e-4;
--   5. metrics: dapo/rounds (rollout calls that ran), dapo/prompts_sampled,
--      dapo/kept_after_round_R for each round R that ran.
-- Rollouts per step: n · (G + the refill rounds' prompts), e.g. 256 + 88
-- when round 1 keeps 24 of 32 groups and one refill round of 11 prompts fills
-- the batch.
CREATE OR REPLACE TABLE pool AS
SELECT prompt_id, prompt, answer, task,
       row_number() OVER (ORDER BY hash(prompt_id, getvariable('step'))) AS k
FROM prompts
WHERE run = getvariable('run') AND split = 'train';

CREATE OR REPLACE TABLE g AS SELECT coalesce(getvariable('prompts_per_step'), 32) AS g;
CREATE OR REPLACE TABLE this_step AS SELECT NULL::VARCHAR AS prompt_id WHERE false;
CREATE OR REPLACE TABLE kept AS SELECT prompt_id FROM this_step;
CREATE OR REPLACE TABLE round_log AS SELECT 0 AS round, 0 AS kept WHERE false;

WHILE (SELECT count(*) FROM kept) < (SELECT g FROM g)
  AND (SELECT count(DISTINCT prompt_id) FROM this_step) < (SELECT count(*) FROM pool)
  AND (SELECT count(*) FROM round_log) < coalesce(getvariable('max_gen_batches'), 10)
DO
  CREATE OR REPLACE TABLE batch AS
  SELECT prompt_id, prompt, answer, task FROM pool
  WHERE k > coalesce((SELECT max(k) FROM pool WHERE prompt_id IN (SELECT prompt_id FROM this_step)), 0)
  ORDER BY k
  LIMIT (SELECT CASE WHEN count(*) = 0 THEN (SELECT g FROM g)
                     ELSE refill_prompts((SELECT g FROM g), (SELECT count(*) FROM kept), count(DISTINCT prompt_id)) END FROM this_step);
  INCLUDE 'core/grpo_step.sql';
  CREATE OR REPLACE TABLE kept AS SELECT DISTINCT prompt_id FROM informative_groups('this_step', max_groups := (SELECT g FROM g));
  CREATE OR REPLACE TABLE round_log AS SELECT * FROM round_log UNION ALL SELECT count(*) + 1, (SELECT count(*) FROM kept) FROM round_log;
END WHILE;

CREATE OR REPLACE TABLE shaped AS
SELECT * REPLACE (reward + overlong_penalty(len(completion_tokens), 8, 4, 1.0) AS reward)
FROM informative_groups('this_step', max_groups := (SELECT g FROM g));

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('shaped');
SET VARIABLE clip_high = coalesce(getvariable('clip_high'), 0.28);
SET VARIABLE minibatch_size = (SELECT greatest(1, count(*) // coalesce(getvariable('updates_per_step'), 2)) FROM train_batch);
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'train/groups_informative' AS name, count(DISTINCT prompt_id) AS value FROM train_batch
UNION ALL SELECT 'dapo/prompts_sampled', count(DISTINCT prompt_id) FROM this_step
UNION ALL SELECT 'dapo/groups_informative_sampled', count(*) FROM (SELECT DISTINCT prompt_id FROM informative_groups('this_step'))
UNION ALL SELECT 'dapo/updates_per_step', coalesce(getvariable('updates_per_step'), 2)
UNION ALL SELECT 'dapo/rounds', count(*) FROM this_step_calls WHERE stage = 'rollout' AND status = 'done' AND shard = 0
UNION ALL SELECT 'dapo/kept_after_round_' || round, kept FROM round_log
UNION ALL SELECT 'dapo/overlong_penalty_mean', avg(overlong_penalty(len(completion_tokens), 8, 4, 1.0)) FROM this_step;

INCLUDE 'core/grpo_update.sql';
