-- critique_verdict(pid, turn, text, finish, transcript, src := 'prompts'):
-- the environment of a critique/refine episode (Critique-GRPO, Zhang et
-- al. 2025, arXiv:2506.03106; Cog-Rethinker, 2025): the policy answers, the
-- environment gives the first answer's verdict, and a wrong answer gets one
-- more attempt. Used as rollout(env := 'sql:critique_verdict', max_turns := 2)
-- (docs/episodes.md, sql:MACRO); examples/recipes/critique.sql.
--
-- The answer of prompt pid is read from src (a table or view with
-- prompt_id, prompt, answer; the prompts view by default, this run's rows
-- when the variable run is set; read with query_table, so the macro binds
-- when it is called, not when the library loads). A turn is right when its
-- text, trimmed, equals the answer (the exact verifier's rule). Returns
--
--   right (any turn):  {observation: NULL, reward: 1, done: true}
--   wrong, turn 0:     {observation: '<|unk|>' || prompt, reward: 0, done: false}
--   wrong, turn >= 1:  {observation: NULL, reward: 0, done: true}
--
-- The verdict is the token <|unk|> (arith's character tokenizer has no
-- letters, and SFT never used <|unk|>, so it is a symbol with no other
-- meaning: "wrong, try again"), followed by the prompt restated, so the
-- second attempt is written after '=' as the first one was. A prompt_id
-- missing from src is an error naming it.
CREATE OR REPLACE MACRO critique_verdict(pid, turn, text, finish, transcript, src := 'prompts') AS (
    SELECT CASE
        WHEN s.n = 0 THEN error('critique_verdict: prompt_id ' || coalesce(CAST(pid AS VARCHAR), 'NULL') || ' is not in ' || CAST(src AS VARCHAR))
        WHEN trim(CAST(text AS VARCHAR)) = s.answer
            THEN {'observation': CAST(NULL AS VARCHAR), 'reward': 1.0::DOUBLE, 'done': true}
        WHEN turn = 0
            THEN {'observation': '<|unk|>' || s.prompt, 'reward': 0.0::DOUBLE, 'done': false}
        ELSE {'observation': CAST(NULL AS VARCHAR), 'reward': 0.0::DOUBLE, 'done': true}
    END
    FROM (SELECT count(*) AS n, any_value(q.answer) AS answer, any_value(q.prompt) AS prompt
          FROM query_table(src) AS q
          WHERE q.prompt_id = pid
            AND (getvariable('run') IS NULL OR q.run = CAST(getvariable('run') AS VARCHAR))) AS s
);

-- critique_turn_rows(episodes, turns): one training row per policy turn of
-- the episodes in table episodes (rollout rows with policy_mask and
-- turn_offsets, e.g. this_step), with that turn's environment reward from
-- table turns (e.g. this_step_turns: rollout_id, turn, reward). Each row is
-- its episode with
--
--   policy_mask  true only on the policy tokens of that turn
--                (completion positions turn_offsets[turn] ..
--                turn_offsets[turn + 1] - 1, or to the end for the last turn)
--   reward       the turn's reward (NULL reward counts as 0); correct = reward > 0
--   rollout_id   '<rollout_id>/t<turn>' (distinct, so train's row order is fixed)
--   turn         INTEGER, 0-based
--
-- A turn's row keeps the whole token sequence: a causal model's log-probs
-- on the turn's tokens do not depend on the tokens after them, and the
-- earlier turns and the verdict stay in the context the refinement was
-- sampled in. grpo_advantages over these rows then puts a prompt's first
-- attempts and refinements in one group (Critique-GRPO's mixed group).
-- Columns: every column of episodes except reward, correct, policy_mask
-- and rollout_id (in their order), then rollout_id, turn, policy_mask,
-- reward, correct.
CREATE OR REPLACE MACRO critique_turn_rows(episodes, turns) AS TABLE
WITH e AS (
    SELECT COLUMNS(lambda c: c NOT IN ('reward', 'correct', 'advantage', 'turn')) FROM query_table(episodes)
)
SELECT e.* EXCLUDE (policy_mask, rollout_id),
       e.rollout_id || '/t' || CAST(t.turn AS VARCHAR) AS rollout_id,
       CAST(t.turn AS INTEGER) AS turn,
       list_transform(e.policy_mask, (m, i) -> m
           AND i - 1 >= e.turn_offsets[t.turn + 1]
           AND (t.turn + 1 >= len(e.turn_offsets) OR i - 1 < e.turn_offsets[t.turn + 2])) AS policy_mask,
       CAST(coalesce(t.reward, 0) AS DOUBLE) AS reward,
       coalesce(t.reward, 0) > 0 AS correct
FROM e JOIN query_table(turns) AS t ON t.rollout_id = e.rollout_id
ORDER BY e.rollout_id, t.turn;
