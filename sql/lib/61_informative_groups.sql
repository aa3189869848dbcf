-- informative_groups(t, max_groups := NULL): DAPO's dynamic sampling filter
-- (Yu et al. 2025, "DAPO", arXiv:2503.14476, §3.2): the rows of the table
-- named t whose group — rows sharing (run, step, prompt_id) — has rewards
-- that are not all equal (sample std of reward > 0, so at least 2 non-NULL
-- rewards), at most max_groups such groups, the first ones in prompt_id
-- order (NULL: all). Groups of all-0 or all-1 rewards have GRPO advantage 0
-- and only dilute a token-mean loss; DAPO drops them and samples more
-- prompts until the batch holds max_groups informative groups — in a job
-- file, up to a fixed number of refill rounds, each a rollout/reward pair
-- with when := (SELECT count(DISTINCT prompt_id) < N FROM kept) sampling
-- refill_prompts(...) new prompts (below).
--
-- Output: every column of t (same rows, unchanged), then group_rank BIGINT
-- (1 = first kept group).
CREATE OR REPLACE MACRO informative_groups(t, max_groups := NULL) AS TABLE
WITH __rl_src AS (
    SELECT COLUMNS(lambda c: c <> 'group_rank') FROM query_table(t)
),
__rl_g AS (
    SELECT run, step, prompt_id,
           row_number() OVER (ORDER BY run, step, prompt_id) AS group_rank
    FROM __rl_src
    GROUP BY run, step, prompt_id
    HAVING coalesce(stddev_samp(reward), 0) > 0
)
SELECT __rl_src.*, __rl_k.group_rank
FROM __rl_src
JOIN __rl_g AS __rl_k ON __rl_src.run = __rl_k.run AND __rl_src.step = __rl_k.step AND __rl_src.prompt_id = __rl_k.prompt_id
WHERE max_groups IS NULL OR __rl_k.group_rank <= max_groups;

-- refill_prompts(target, kept, sampled, max_prompts := NULL): how many new
-- prompts a DAPO refill round samples so that the batch reaches target
-- informative groups, given the informative rate observed so far this step
-- (kept informative groups out of sampled groups):
--
--   need = target - kept
--   0                                   when need <= 0 (the batch is full)
--   max_prompts                         when kept = 0 (no rate observed yet)
--   ceil(need * sampled / kept)         otherwise (need / rate), at most max_prompts
--
-- max_prompts NULL: 2 * target. verl's dynamic sampling draws whole
-- generation batches until the batch is full (at most max_num_gen_batches of
-- them); examples/recipes/dapo.sql refills in a WHILE loop, each round one
-- rollout/reward pair sized by this macro. BIGINT.
CREATE OR REPLACE MACRO refill_prompts(target, kept, sampled, max_prompts := NULL) AS (
    CAST(CASE
        WHEN kept >= target THEN 0
        WHEN kept <= 0 THEN coalesce(max_prompts, 2 * target)
        ELSE least(coalesce(max_prompts, 2 * target), ceil((target - kept) * CAST(sampled AS DOUBLE) / kept))
    END AS BIGINT)
);
