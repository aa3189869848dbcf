-- examples/recipes/oneshot_fmt.sql — one-shot RLVR (Wang et al. 2025,
-- arXiv:2504.20571) from a start that knows the skill but not the format:
-- run it forked from a sft_format.sql run (fork.sql --set from=sftfmt-sN).
--
--   rljob run examples/recipes/oneshot_fmt.sql --lake L --run oneshot_fmt-s1 --seed 1 --steps 32
--
-- The one prompt is fixed before any update: the first step probes the
-- start policy (core/probe.sql: probe_prompts, default 32 here, train
-- prompts × 8 samples, tagged 'probe', not train rollouts) and picks the
-- prompt with the largest pass-rate variance p(1 − p), ties by prompt_id
-- (the paper picks its example by the variance of its training accuracy).
-- Every step, the first included, samples that prompt n_one (default 256)
-- times in one GRPO group — 256 train rollouts per step, the baseline's
-- budget — and makes one update with entropy_coef 0.01, lr 5e-4, as
-- oneshot.sql does after its probe step.
SET VARIABLE probe_prompts = coalesce(getvariable('probe_prompts'), 32);
INCLUDE 'core/probe.sql';

CREATE OR REPLACE TABLE batch AS
SELECT prompt_id, prompt, answer, task
FROM probe
ORDER BY (c / n) * (1 - c / n) DESC, prompt_id
LIMIT 1;

SET VARIABLE group_size = coalesce(getvariable('n_one'), 256);
SET VARIABLE entropy_coef = coalesce(getvariable('entropy_coef'), 0.01);
INCLUDE 'core/grpo_step.sql';

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');
CREATE OR REPLACE TABLE recipe_metrics AS
SELECT 'oneshot/prompts' AS name, count(DISTINCT prompt_id) AS value FROM this_step
UNION ALL SELECT 'oneshot/probe_pass_rate', avg(c / n) FROM probe;

INCLUDE 'core/grpo_update.sql';
