package jobs

import (
	"fmt"

	"github.com/rljob/rljob/jobs/verify"
	rsql "github.com/rljob/rljob/sql"
)

// RegisterUDFs registers the verifiers as DuckDB scalar functions on e, so
// old rollouts can be re-scored in SQL:
//
//	extract_answer(text VARCHAR, style VARCHAR) -> VARCHAR   -- verify.ExtractAnswer; style gsm8k|gsm8k_flexible|math|boxed
//	extract_answer(text VARCHAR) -> VARCHAR                  -- style 'math'
//	math_equal(pred VARCHAR, gold VARCHAR) -> BOOLEAN        -- verify.MathEqual
//
// NULL in, NULL out.
func RegisterUDFs(e *rsql.Engine) error {
	if err := e.RegisterStringFunc("extract_answer",
		rsql.StringFunc{Args: 2, F: func(v []string) any { return verify.ExtractAnswer(v[0], v[1]) }},
		rsql.StringFunc{Args: 1, F: func(v []string) any { return verify.ExtractAnswer(v[0], "math") }},
	); err != nil {
		return fmt.Errorf("jobs: register extract_answer: %w", err)
	}
	if err := e.RegisterStringFunc("math_equal",
		rsql.StringFunc{Args: 2, Bool: true, F: func(v []string) any { return verify.MathEqual(v[0], v[1]) }},
	); err != nil {
		return fmt.Errorf("jobs: register math_equal: %w", err)
	}
	return nil
}
