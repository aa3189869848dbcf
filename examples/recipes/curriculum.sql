-- examples/recipes/curriculum.sql — a sweet-spot curriculum whose level
-- rises with the policy (SEELE, Li et al. 2025, arXiv:2509.06923; GHPO, Liu
-- et al. 2025, arXiv:2507.10628; the [0.05, 0.95] sweet spot of
-- examples/arith/grpo.sql made adaptive).
--
--   rljob run examples/recipes/curriculum.sql --lake L --run R --seed 1 --steps 24
--
-- Per step:
--   1. level = recent_pass_rate(5): the policy's mean training accuracy over
--      its last 5 steps (NULL → 0.5 before any); the band of prompt EMA pass
--      rates it trains on is centred on 1 − level, ± 0.25, inside [0.05, 0.95]
--      (sweet_spot_band, sql/lib/60_curriculum.sql): the better the policy
--      gets, the harder the prompts;
--   2. batch: the band's prompts, closest to the target first, then prompts
--      never tried (hash order), 32 in all — the first steps are all
--      untried prompts, whose one-step pass rates then fill the band;
--   3. rollout 8 × temperature 1, exact reward, as baseline.sql (256
--      rollouts);
--   4. hints (--set hints=1; off by default): GHPO/SEELE-style guidance.
--      hint_prompts('this_step') (sql/lib/60_curriculum.sql) takes every
--      group of this step with no correct rollout and appends the first
--      character of its reference answer to the prompt ('47+38=' →
--      '47+38=0', the policy has to write '85'); a second hint round gives
--      the prompts whose hinted group failed again two characters ('08').
--      A hint never holds the whole answer, and the hint characters are
--      digits, which the arith tokenizer has (chars:0123456789+-=). The
--      rounds are a FOR loop (docs/job-language-loops.md) that runs twice
--      with hints on and not at all without. Each round samples 8 more rollouts per hinted prompt (they count as
--      sampled train rollouts) and scores them with the exact verifier on
--      hint || completion against the FULL answer (reward's rollouts :=
--      argument). A hinted group replaces its prompt's failed groups in the
--      train batch (all-wrong groups have GRPO advantage 0 anyway);
--   5. GRPO advantages on each prompt's newest group and one update, as
--      baseline.sql;
--   6. metrics: curriculum/level, curriculum/band_lo, curriculum/band_hi,
--      curriculum/in_band (how many of the batch came from the band),
--      curriculum/hinted_prompts, curriculum/hint_rollouts,
--      curriculum/hinted_pass_rate.
-- Off by default because hints change what a step costs (8 rollouts more
-- per hinted prompt and round) and what the batch holds, so the plain
-- sweet-spot selection stays comparable with the other recipes; make
-- compare runs both (curriculum and curriculum_hints).
CREATE OR REPLACE TABLE level AS
SELECT recent_pass_rate(5) AS level;

CREATE OR REPLACE TABLE band AS
SELECT * FROM sweet_spot_band((SELECT level FROM level), width := 0.25);

CREATE OR REPLACE TABLE picked AS
SELECT p.prompt_id, p.prompt, p.answer, p.task, '' AS hint, b.prompt_id IS NOT NULL AS in_band
FROM prompts AS p
LEFT JOIN band AS b USING (prompt_id)
LEFT JOIN prompt_stats AS s USING (prompt_id)
WHERE p.run = getvariable('run') AND p.split = 'train'
  AND (b.prompt_id IS NOT NULL OR s.prompt_id IS NULL)
ORDER BY b.prompt_id IS NULL, b.distance, hash(p.prompt_id, getvariable('step'))
LIMIT coalesce(getvariable('prompts_per_step'), 32);

CREATE OR REPLACE TABLE batch AS SELECT * EXCLUDE (in_band) FROM picked;
INCLUDE 'core/grpo_step.sql';

-- hint rounds (--set hints=1): round r gives every group that failed with
-- an (r-1)-character hint the first r characters of its answer
FOR hint_round IN 1..CASE WHEN coalesce(getvariable('hints'), 0) = 1 THEN 2 ELSE 0 END MAX 2 DO
  CREATE OR REPLACE TABLE hinted AS SELECT * FROM hint_prompts('this_step');
  CALL rollout(prompts := 'SELECT prompt_id, prompt, answer, task, hint FROM hinted', n := coalesce(getvariable('n'), 8), max_new_tokens := 8, temperature := 1.0,
               when := (SELECT count(*) > 0 FROM hinted));
  CREATE OR REPLACE TABLE hint_scoring AS
  SELECT rollout_id, prompt_id, hint || completion AS completion, answer
  FROM this_step_rollouts WHERE rollout_id NOT IN (SELECT rollout_id FROM this_step_rewards);
  CALL reward(verifier := 'exact', rollouts := 'hint_scoring', when := (SELECT count(*) > 0 FROM hinted));
  CREATE OR REPLACE TABLE this_step AS SELECT * FROM this_step_scored WHERE tag = 'train';
END FOR;

-- each prompt's newest group: its longest hint (none without hints)
CREATE OR REPLACE TABLE newest AS
SELECT * FROM this_step QUALIFY length(hint) = max(length(hint)) OVER (PARTITION BY prompt_id);

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('newest');
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'train/groups_informative' AS name, count(DISTINCT prompt_id) FILTER (group_std > 0) AS value FROM train_batch
UNION ALL SELECT 'curriculum/level', coalesce((SELECT level FROM level), 0.5)
UNION ALL SELECT 'curriculum/band_lo', greatest(0.05, 1 - coalesce((SELECT level FROM level), 0.5) - 0.25)
UNION ALL SELECT 'curriculum/band_hi', least(0.95, 1 - coalesce((SELECT level FROM level), 0.5) + 0.25)
UNION ALL SELECT 'curriculum/in_band', count_if(in_band) FROM picked
UNION ALL SELECT 'curriculum/hinted_prompts', count(DISTINCT prompt_id) FILTER (hint <> '') FROM this_step
UNION ALL SELECT 'curriculum/hint_rollouts', count_if(hint <> '') FROM this_step
UNION ALL SELECT 'curriculum/hinted_pass_rate', avg(CASE WHEN correct THEN 1.0 ELSE 0.0 END) FILTER (hint <> '') FROM this_step;

INCLUDE 'core/grpo_update.sql';
