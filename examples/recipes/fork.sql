-- examples/recipes/fork.sql — step 0 of a run that starts from another run's
-- newest checkpoint (an SFT run shared by several recipes and seeds), with a
-- copy of that run's prompts, so the recipes (which read this run's prompts
-- and prompt_stats only) run unchanged on it.
--
--   rljob run examples/recipes/fork.sql --lake L --run dapo-s1 --seed 1 --set from=sft-s1
--
-- init_policy copies the weights and tokenizer of run `from`'s newest
-- checkpoint in a complete step, without its optimizer state (train starts
-- fresh AdamW moments either way after an sft checkpoint).
CALL save(query := 'SELECT * FROM prompts WHERE run = getvariable(''from'')', output := 'prompts');
CALL init_policy(policy := 'run=' || getvariable('from'));
