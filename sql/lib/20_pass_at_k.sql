-- pass_at_k(n, c, k): the unbiased pass@k estimator of Chen et al. 2021
-- ("Evaluating Large Language Models Trained on Code", eq. 1) from n samples
-- of which c are correct:
--
--   pass@k = 1 - C(n - c, k) / C(n, k)
--          = 1 - prod_{i = n-c+1 .. n} (1 - k / i)      (numerically stable form)
--
-- which is 1 when n - c < k (every k-subset holds a correct sample) and 0 when
-- c = 0. The product has c factors, each in [0, 1), so nothing overflows even
-- for n in the hundreds (C(200, 100) ~ 9e58 would in the binomial form).
-- Returns DOUBLE; NULL when an argument is NULL; an error unless
-- 0 <= c <= n and 1 <= k <= n. (Because it can raise that error, DuckDB
-- will not let a later select item reuse its alias: compute it in a
-- subquery or repeat the call.)
--
-- Usage: SELECT task, avg(pass_at_k(n, c, 4)) FROM
--          (SELECT task, prompt_id, count(*) AS n, count_if(correct) AS c
--           FROM scored WHERE tag = 'eval' GROUP BY ALL) GROUP BY task;
CREATE OR REPLACE MACRO pass_at_k(n, c, k) AS
CASE
    WHEN n IS NULL OR c IS NULL OR k IS NULL THEN CAST(NULL AS DOUBLE)
    WHEN c < 0 OR c > n OR k < 1 OR k > n THEN
        error('pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n=' || CAST(n AS VARCHAR)
              || ' c=' || CAST(c AS VARCHAR) || ' k=' || CAST(k AS VARCHAR))
    WHEN n - c < k THEN CAST(1.0 AS DOUBLE)
    WHEN c = 0 THEN CAST(0.0 AS DOUBLE)
    ELSE 1.0 - list_product(list_transform(range(CAST(n - c + 1 AS BIGINT), CAST(n + 1 AS BIGINT)),
                                           lambda i: 1.0 - CAST(k AS DOUBLE) / CAST(i AS DOUBLE)))
END;
