-- examples/arith/relift.sql — ReLIFT-style RL with SFT on the hardest
-- prompts, interleaved in ONE job file (Ma et al. 2025, "Learning What
-- Reinforcement Learning Can't: Interleaved Online Fine-Tuning for Hardest
-- Questions"). Run it where grpo.sql runs (after prepare.sql and sft.sql):
--
--   rljob run examples/arith/relift.sql --lake ./lake --run arith --seed 1 --steps 40 [--set relift_k=2]
--
-- Each iteration (step S of the run):
--   1–5. a GRPO step as in grpo.sql, except that the batch keeps prompts that
--        were never solved (pass rate 0): ReLIFT learns from them by SFT;
--   6.   hard: the prompts of this step that no rollout solved, and that no
--        rollout solved in any earlier step either, tried in at least
--        relift_k steps counting this one (default 1): "pass rate stayed 0
--        for K steps";
--   7.   sft on those prompts with their reference answers as
--        demonstrations, in the same step, after train: it starts from
--        train's checkpoint of this step ('latest' counts this step's
--        earlier calls) and its own checkpoint is what the next step
--        samples from. It runs only when at least 4 prompts are hard
--        (when := ...); a skipped call is recorded, so a rerun skips it too.
--        train and sft each continue their own AdamW moments.
--   8.   metrics: reward mean, groups kept, and relift/hard_prompts.

CREATE OR REPLACE TABLE batch AS
SELECT p.prompt_id, p.prompt, p.answer, p.task
FROM prompts AS p
LEFT JOIN prompt_stats AS s USING (prompt_id)
WHERE p.run = getvariable('run') AND p.split = 'train'
  AND coalesce(s.pass_rate, 0.5) <= 0.95
ORDER BY hash(p.prompt_id, getvariable('step'))
LIMIT 32;

CALL rollout(prompts := 'batch', policy := 'latest', n := 8, max_new_tokens := 8, temperature := 1.0);
CALL reward(verifier := 'exact');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored WHERE tag = 'train';

CREATE OR REPLACE TABLE train_batch AS
SELECT * FROM grpo_advantages('this_step')
WHERE group_std > 0;

CALL train(data := 'train_batch', policy := 'latest', lr := coalesce(getvariable('lr'), 5e-4), clip_low := 0.2, clip_high := 0.28);

CREATE OR REPLACE TABLE hard AS
WITH now AS (
    SELECT prompt_id, count_if(correct) AS solved FROM this_step GROUP BY prompt_id
), before AS (
    SELECT prompt_id, count(DISTINCT step) AS steps, count_if(correct) AS solved
    FROM scored
    WHERE run = getvariable('run') AND tag = 'train'
    GROUP BY prompt_id
)
SELECT p.prompt_id, p.prompt, p.answer AS completion
FROM now
JOIN prompts AS p ON p.prompt_id = now.prompt_id AND p.run = getvariable('run')
LEFT JOIN before AS b ON b.prompt_id = now.prompt_id
WHERE now.solved = 0 AND coalesce(b.solved, 0) = 0
  AND coalesce(b.steps, 0) + 1 >= coalesce(getvariable('relift_k'), 1)
ORDER BY p.prompt_id;

CALL sft(data := 'SELECT prompt, completion FROM hard', policy := 'latest', lr := 1e-3, epochs := 2, batch_size := 8,
         when := (SELECT count(*) >= 4 FROM hard));

CREATE OR REPLACE TABLE step_metrics AS
SELECT 'train/reward_mean' AS name, avg(reward) AS value FROM this_step
UNION ALL SELECT 'train/groups_kept', count(DISTINCT prompt_id) / (SELECT count(DISTINCT prompt_id) FROM this_step) FROM train_batch
UNION ALL SELECT 'curriculum/batch_prompts', count(*) FROM batch
UNION ALL SELECT 'curriculum/prior_pass_rate_mean', avg(coalesce(s.pass_rate, 0.5)) FROM batch LEFT JOIN prompt_stats AS s USING (prompt_id)
UNION ALL SELECT 'relift/hard_prompts', count(*) FROM hard;

CALL log_metrics(query := 'SELECT name, value FROM step_metrics');
