package sql

import (
	"database/sql/driver"
	"fmt"

	"github.com/duckdb/duckdb-go/v2"
)

// StringFunc is a scalar SQL function of Args VARCHAR arguments that
// returns VARCHAR (F returns a string) or, with Bool, BOOLEAN (F returns a
// bool). DuckDB passes NULL through without calling F.
type StringFunc struct {
	Args int
	Bool bool
	F    func(args []string) any
}

// RegisterStringFunc registers overloads of one function name (e.g.
// extract_answer(text) and extract_answer(text, style)) on the engine's
// connection.
func (e *Engine) RegisterStringFunc(name string, overloads ...StringFunc) error {
	fs := make([]duckdb.ScalarFunc, len(overloads))
	for i, o := range overloads {
		fs[i] = &stringUDF{o}
	}
	if len(fs) == 1 {
		return e.RegisterScalarUDF(name, fs[0])
	}
	return e.RegisterScalarUDFSet(name, fs...)
}

type stringUDF struct{ StringFunc }

func (u *stringUDF) Config() duckdb.ScalarFuncConfig {
	vc, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		panic(err) // a primitive type always has a TypeInfo
	}
	out := duckdb.TYPE_VARCHAR
	if u.Bool {
		out = duckdb.TYPE_BOOLEAN
	}
	rt, err := duckdb.NewTypeInfo(out)
	if err != nil {
		panic(err)
	}
	ins := make([]duckdb.TypeInfo, u.Args)
	for i := range ins {
		ins[i] = vc
	}
	return duckdb.ScalarFuncConfig{InputTypeInfos: ins, ResultTypeInfo: rt}
}

func (u *stringUDF) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) {
		args := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("argument %d: want VARCHAR, got %T", i+1, x)
			}
			args[i] = s
		}
		return u.F(args), nil
	}}
}
