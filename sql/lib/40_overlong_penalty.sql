-- overlong_penalty(len, l_max, l_buf, factor): DAPO's soft overlong
-- punishment (Yu et al. 2025, "DAPO", eq. 13; verl DAPORewardManager
-- overlong_buffer), the amount to ADD to a reward for a completion of len
-- tokens when generation stops at l_max tokens and the last l_buf of them are
-- the penalty buffer:
--
--   overlong_penalty = least(0, -(len - (l_max - l_buf)) / l_buf * factor)
--
--   len <= l_max - l_buf : 0
--   len  = l_max         : -factor
--   in between           : linear
--
-- As in verl there is no clamp for len > l_max (generation never exceeds
-- l_max = max_new_tokens). DOUBLE; an error when l_buf <= 0 (so, as with
-- pass_at_k, a later select item cannot reuse its alias).
--
-- Usage: SELECT * REPLACE (reward + overlong_penalty(len(completion_tokens), 512, 128, 1.0) AS reward)
--        FROM scored;
CREATE OR REPLACE MACRO overlong_penalty(len, l_max, l_buf, factor) AS
CASE
    WHEN l_buf <= 0 THEN error('overlong_penalty: l_buf must be > 0, got ' || CAST(l_buf AS VARCHAR))
    ELSE least(0.0, -(CAST(len AS DOUBLE) - (l_max - l_buf)) / l_buf * factor)
END;
