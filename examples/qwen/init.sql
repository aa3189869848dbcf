-- examples/qwen/init.sql — step 0 of the Qwen example: the policy.
--
-- With --set model=/path/to/hf/dir (config.json, model.safetensors,
-- tokenizer.json: e.g. Qwen2.5-0.5B-Instruct), that model. Without, a random
-- stand-in of Qwen2.5-0.5B's shape (config.json here: hidden 896, 24 layers,
-- 14 heads, 2 KV heads, intermediate 4864, vocab 151936, tied embeddings)
-- with the tokenizer --set tokenizer=... (default: Qwen's BPE from
-- ../shared/data/tokenizer/qwen3). Paths are relative to the directory rljob
-- runs in (the repository root).
CALL init_policy(policy := getvariable('model'), dtype := coalesce(getvariable('dtype'), 'fp32'), when := getvariable('model') IS NOT NULL);
CALL init_policy(config := coalesce(getvariable('config'), 'examples/qwen/config.json'),
                 tokenizer := coalesce(getvariable('tokenizer'), '../shared/data/tokenizer/qwen3/tokenizer.json'),
                 seed := 1, dtype := coalesce(getvariable('dtype'), 'fp32'), when := getvariable('model') IS NULL);
