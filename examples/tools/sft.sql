-- examples/tools/sft.sql — step 1: SFT on synthetic tool-use traces.
--
-- A trace is '4567*89=' <call>4567*89</call> <result>406463</result> 406463.
-- It is cut in two SFT rows, so that the loss falls only on what the policy
-- writes: the call (the turn ends at '</call>', where rollout's stop := ends
-- it), and, after the calculator's result, the answer (then EOS).
-- With tool := false the rows are the problem and its answer alone: the
-- same model and budget without the tool.
CREATE OR REPLACE TABLE sft_problems AS
SELECT prompt, answer FROM prompts
WHERE run = getvariable('run') AND split = 'train'
ORDER BY prompt_id
LIMIT coalesce(getvariable('sft_problems'), 400);

CREATE OR REPLACE TABLE sft_data AS
SELECT prompt, '<call>' || replace(prompt, '=', '') || '</call>' AS completion FROM sft_problems
WHERE coalesce(getvariable('tool'), true)
UNION ALL
SELECT prompt || '<call>' || replace(prompt, '=', '') || '</call><result>' || answer || '</result>', answer FROM sft_problems
WHERE coalesce(getvariable('tool'), true)
UNION ALL
SELECT prompt, answer FROM sft_problems
WHERE NOT coalesce(getvariable('tool'), true);

-- full_state_every := 1: eval.sql and grpo.sql load the warm-up from new
-- processes, which would replay all of it from a light checkpoint.
CALL sft(data := 'sft_data', lr := coalesce(getvariable('sft_lr'), 6e-3), epochs := coalesce(getvariable('sft_epochs'), 16), batch_size := 32, warmup := 10,
         full_state_every := 1);
