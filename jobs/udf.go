package jobs

import (
	"database/sql/driver"
	"fmt"

	"github.com/duckdb/duckdb-go/v2"

	"rljob/jobs/verify"
	rsql "rljob/sql"
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
	if err := e.RegisterScalarUDFSet("extract_answer",
		&udf{in: 2, out: duckdb.TYPE_VARCHAR, f: func(v []driver.Value) any {
			return verify.ExtractAnswer(v[0].(string), v[1].(string))
		}},
		&udf{in: 1, out: duckdb.TYPE_VARCHAR, f: func(v []driver.Value) any {
			return verify.ExtractAnswer(v[0].(string), "math")
		}},
	); err != nil {
		return fmt.Errorf("jobs: register extract_answer: %w", err)
	}
	if err := e.RegisterScalarUDF("math_equal", &udf{in: 2, out: duckdb.TYPE_BOOLEAN, f: func(v []driver.Value) any {
		return verify.MathEqual(v[0].(string), v[1].(string))
	}}); err != nil {
		return fmt.Errorf("jobs: register math_equal: %w", err)
	}
	return nil
}

// udf is a scalar function of in VARCHAR arguments.
type udf struct {
	in  int
	out duckdb.Type
	f   func([]driver.Value) any
}

func (u *udf) Config() duckdb.ScalarFuncConfig {
	vc, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		panic(err)
	}
	rt, err := duckdb.NewTypeInfo(u.out)
	if err != nil {
		panic(err)
	}
	ins := make([]duckdb.TypeInfo, u.in)
	for i := range ins {
		ins[i] = vc
	}
	return duckdb.ScalarFuncConfig{InputTypeInfos: ins, ResultTypeInfo: rt}
}

func (u *udf) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) { return u.f(v), nil }}
}
