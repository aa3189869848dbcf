-- examples/recipes/dapo.sql — DAPO (Yu et al. 2025, "DAPO: An Open-Source
-- LLM Reinforcement Learning System at Scale", arXiv:2503.14476) on arith:
-- dynamic sampling with refill rounds, clip-higher, token-mean loss and
-- soft overlong punishment.
--
--   rljob run examples/recipes/dapo.sql --lake L --run R --seed 1 --steps 16
--
-- Per step (G = prompts_per_step, default 32; n = 8 samples per prompt):
--   1. pool: the train prompts in a fresh uniform order (hash of prompt_id
--      and step), numbered k = 1, 2, ...
--   2. round 1: rollout + reward on prompts k <= G;
--   3. kept: the informative groups so far (informative_groups: reward std
--      > 0, sql/lib/61_informative_groups.sql), at most G;
--   4. refill rounds 2–5: while fewer than G groups are kept (when :=
--      kept < G on the rollout and the reward call; a skipped round is
--      recorded, so a rerun skips it too), rollout + reward on the next
--      refill_prompts(G, kept, sampled) prompts of the pool: enough to reach
--      G informative groups at the informative rate seen so far this step,
--      ceil((G − kept) · sampled / kept), at most 2G (2G when none is kept
--      yet). DAPO/verl's dynamic sampling draws generation batches until the
--      batch is full (at most max_num_gen_batches); a job file has no loop,
--      so this is up to 4 refill rounds, each sized to fill the batch, and a
--      step still short of G after round 5 trains on what it has. reward
--      scores only this step's rollouts it has not scored yet (its default),
--      so each round scores just its own samples;
--   5. overlong shaping: reward + overlong_penalty(len, 8, 4, 1.0)
--      (sql/lib/40_overlong_penalty.sql; max_new_tokens 8, a 4-token buffer:
--      a correct answer is 3 digits + EOS = 4 tokens, every token past that
--      costs 0.25), then GRPO advantages on the shaped reward of the kept
--      groups (the filter looks at correctness, as DAPO's does);
--   6. train: clip_low 0.2, clip_high 0.28 (clip-higher), token-mean, two
--      minibatches of 128 sequences (two updates per step, so ρ leaves 1
--      and the asymmetric clip acts on the second), lr 5e-4;
--   7. metrics: dapo/rounds (rollout calls that ran), dapo/prompts_sampled,
--      dapo/kept_after_round_R (R = 1..5; unchanged after a skipped round).
-- Rollouts per step: n · (G + the refill rounds' prompts), e.g. 256 + 88
-- when round 1 keeps 24 of 32 groups and one refill round of 11 prompts fills
-- the batch.
CREATE OR REPLACE TABLE pool AS
SELECT prompt_id, prompt, answer, task,
       row_number() OVER (ORDER BY hash(prompt_id, getvariable('step'))) AS k
FROM prompts
WHERE run = getvariable('run') AND split = 'train';

CREATE OR REPLACE TABLE g AS SELECT coalesce(getvariable('prompts_per_step'), 32) AS g;

CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task FROM pool WHERE k <= (SELECT g FROM g)',
             n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE kept AS SELECT DISTINCT prompt_id FROM informative_groups('this_step', max_groups := (SELECT g FROM g));
CREATE OR REPLACE TABLE round_log AS SELECT 1 AS round, (SELECT count(*) FROM kept) AS kept;

-- refill round 2: the next refill_prompts(G, kept, sampled) prompts of the pool
CREATE OR REPLACE TABLE refill AS
SELECT (SELECT max(k) FROM pool WHERE prompt_id IN (SELECT prompt_id FROM this_step)) AS upto,
       refill_prompts((SELECT g FROM g), (SELECT count(*) FROM kept), (SELECT count(DISTINCT prompt_id) FROM this_step)) AS m;
CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task FROM pool WHERE k > (SELECT upto FROM refill) AND k <= (SELECT upto + m FROM refill)',
             n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0,
             when := (SELECT count(*) FROM kept) < (SELECT g FROM g));
CALL reward(verifier := 'exact', when := (SELECT count(*) FROM kept) < (SELECT g FROM g));

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE kept AS SELECT DISTINCT prompt_id FROM informative_groups('this_step', max_groups := (SELECT g FROM g));
CREATE OR REPLACE TABLE round_log AS SELECT * FROM round_log UNION ALL SELECT 2, (SELECT count(*) FROM kept);

-- refill round 3: the next refill_prompts(G, kept, sampled) prompts of the pool
CREATE OR REPLACE TABLE refill AS
SELECT (SELECT max(k) FROM pool WHERE prompt_id IN (SELECT prompt_id FROM this_step)) AS upto,
       refill_prompts((SELECT g FROM g), (SELECT count(*) FROM kept), (SELECT count(DISTINCT prompt_id) FROM this_step)) AS m;
CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task FROM pool WHERE k > (SELECT upto FROM refill) AND k <= (SELECT upto + m FROM refill)',
             n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0,
             when := (SELECT count(*) FROM kept) < (SELECT g FROM g));
CALL reward(verifier := 'exact', when := (SELECT count(*) FROM kept) < (SELECT g FROM g));

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE kept AS SELECT DISTINCT prompt_id FROM informative_groups('this_step', max_groups := (SELECT g FROM g));
CREATE OR REPLACE TABLE round_log AS SELECT * FROM round_log UNION ALL SELECT 3, (SELECT count(*) FROM kept);

-- refill round 4: the next refill_prompts(G, kept, sampled) prompts of the pool
CREATE OR REPLACE TABLE refill AS
SELECT (SELECT max(k) FROM pool WHERE prompt_id IN (SELECT prompt_id FROM this_step)) AS upto,
       refill_prompts((SELECT g FROM g), (SELECT count(*) FROM kept), (SELECT count(DISTINCT prompt_id) FROM this_step)) AS m;
CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task FROM pool WHERE k > (SELECT upto FROM refill) AND k <= (SELECT upto + m FROM refill)',
             n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0,
             when := (SELECT count(*) FROM kept) < (SELECT g FROM g));
CALL reward(verifier := 'exact', when := (SELECT count(*) FROM kept) < (SELECT g FROM g));

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE kept AS SELECT DISTINCT prompt_id FROM informative_groups('this_step', max_groups := (SELECT g FROM g));
CREATE OR REPLACE TABLE round_log AS SELECT * FROM round_log UNION ALL SELECT 4, (SELECT count(*) FROM kept);

-- refill round 5: the next refill_prompts(G, kept, sampled) prompts of the pool
CREATE OR REPLACE TABLE refill AS
SELECT (SELECT max(k) FROM pool WHERE prompt_id IN (SELECT prompt_id FROM this_step)) AS upto,
       refill_prompts((SELECT g FROM g), (SELECT count(*) FROM kept), (SELECT count(DISTINCT prompt_id) FROM this_step)) AS m;
CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task FROM pool WHERE k > (SELECT upto FROM refill) AND k <= (SELECT upto + m FROM refill)',
             n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0,
             when := (SELECT count(*) FROM kept) < (SELECT g FROM g));
CALL reward(verifier := 'exact', when := (SELECT count(*) FROM kept) < (SELECT g FROM g));

CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
CREATE OR REPLACE TABLE kept AS SELECT DISTINCT prompt_id FROM informative_groups('this_step', max_groups := (SELECT g FROM g));
CREATE OR REPLACE TABLE round_log AS SELECT * FROM round_log UNION ALL SELECT 5, (SELECT count(*) FROM kept);

CREATE OR REPLACE TABLE shaped AS
SELECT * REPLACE (reward + overlong_penalty(len(completion_tokens), 8, 4, 1.0) AS reward)
FROM informative_groups('this_step', max_groups := (SELECT g FROM g));

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM grpo_advantages('shaped');

CALL train(data := 'train_batch', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.28,
           loss_agg := 'token-mean', minibatch_size := (SELECT greatest(1, count(*) // 2) FROM train_batch));

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS value FROM this_step
UNION ALL SELECT 'train/rollouts', count(*) FROM this_step
UNION ALL SELECT 'train/groups_informative', count(DISTINCT prompt_id) FROM train_batch
UNION ALL SELECT 'dapo/prompts_sampled', count(DISTINCT prompt_id) FROM this_step
UNION ALL SELECT 'dapo/groups_informative_sampled', count(*) FROM (SELECT DISTINCT prompt_id FROM informative_groups('this_step'))
UNION ALL SELECT 'dapo/rounds', count(*) FROM this_step_calls WHERE stage = 'rollout' AND status = 'done' AND shard = 0
UNION ALL SELECT 'dapo/kept_after_round_' || round, kept FROM round_log
UNION ALL SELECT 'dapo/overlong_penalty_mean', avg(overlong_penalty(len(completion_tokens), 8, 4, 1.0)) FROM this_step;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
