-- examples/recipes/core/probe.sql — INCLUDEd by oneshot_fmt.sql and
-- relift_fixed.sql: once per run, at the first step that runs it, sample
-- the run's start policy (the checkpoint fork.sql copied) on probe_prompts
-- (a recipe's SET VARIABLE, else --set, else 256) train prompts in a fixed
-- hash order, probe_n (default 8) samples each at temperature 1, tagged
-- 'probe', scored by the exact verifier. The tag keeps them out of the
-- train rollouts (compare.sh's budget counts tag = 'train'; prompt_stats
-- reads train rows only): they are an evaluation of the start, made before
-- any update. probe is then the run's probe results, one row per prompt
-- (prompt_id, prompt, answer, task, n, c: samples and correct ones; from
-- this_step_scored at the probe's step, from scored later) — the same at
-- every later step, since the calls run only while the run has no probe
-- rollouts (a rerun of that step skips them as committed).
CREATE OR REPLACE TABLE probe_done AS
SELECT count(*) > 0 AS done FROM rollouts WHERE run = getvariable('run') AND tag = 'probe';

CREATE OR REPLACE TABLE probe_batch AS
SELECT prompt_id, prompt, answer, task
FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY hash(prompt_id, 'probe'), prompt_id
LIMIT coalesce(getvariable('probe_prompts'), 256);

CALL rollout(prompts := 'probe_batch', n := coalesce(getvariable('probe_n'), 8), max_new_tokens := 8, temperature := 1.0, tag := 'probe',
             when := NOT (SELECT done FROM probe_done));
CALL reward(verifier := 'exact', when := NOT (SELECT done FROM probe_done));

CREATE OR REPLACE TABLE probe AS
SELECT s.prompt_id, any_value(p.prompt) AS prompt, any_value(p.answer) AS answer, any_value(p.task) AS task, count(*) AS n, count_if(s.correct) AS c
FROM (SELECT run, prompt_id, correct, tag FROM scored UNION ALL SELECT run, prompt_id, correct, tag FROM this_step_scored) AS s
JOIN prompts AS p ON p.run = s.run AND p.prompt_id = s.prompt_id
WHERE s.run = getvariable('run') AND s.tag = 'probe'
GROUP BY s.prompt_id;
