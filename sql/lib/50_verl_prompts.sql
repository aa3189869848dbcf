-- verl_prompts(path): a verl-format Parquet dataset read as rljob prompts.
--
-- verl's preprocessing scripts (examples/data_preprocess/gsm8k.py, math_dataset.py, ...)
-- write one row per prompt with
--   data_source  VARCHAR                            e.g. 'openai/gsm8k'
--   prompt       STRUCT(role VARCHAR, content VARCHAR)[]   chat messages
--   ability      VARCHAR                            e.g. 'math'
--   reward_model STRUCT(style VARCHAR, ground_truth ...)
--   extra_info   STRUCT(split VARCHAR, index BIGINT, ...)
-- and verl_prompts maps them to the prompts table (DESIGN.md §5):
--   prompt_id = data_source || '/' || extra_info.split || '/' || extra_info.index
--   prompt    = the messages as they are, system message included: the rollout
--               stage renders a list of messages with the policy's chat template
--               (add_generation_prompt), as verl does (docs/chat.md)
--   question  = content of the last message with role 'user' (for a model without
--               a chat template: SELECT * REPLACE (question AS prompt) FROM verl_prompts(...))
--   answer    = CAST(reward_model.ground_truth AS VARCHAR)
--   task      = data_source
--   split     = extra_info.split
--   ability   (passes through)
-- path is anything read_parquet takes (a file, a glob, a list of files).
--
-- Usage: SELECT * FROM verl_prompts('data/gsm8k/*.parquet') WHERE split = 'train';
CREATE OR REPLACE MACRO verl_prompts(path) AS TABLE
SELECT data_source || '/' || CAST(extra_info.split AS VARCHAR) || '/' || CAST(extra_info.index AS VARCHAR) AS prompt_id,
       prompt,
       list_filter(prompt, lambda m: m.role = 'user')[-1].content AS question,
       CAST(reward_model.ground_truth AS VARCHAR) AS answer,
       data_source AS task,
       CAST(extra_info.split AS VARCHAR) AS split,
       ability
FROM read_parquet(path);
