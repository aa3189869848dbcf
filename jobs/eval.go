package jobs

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strconv"
	"strings"

	rsql "github.com/rljob/rljob/sql"
)

// Expr is an argument written as a SQL expression (`lr := getvariable('lr')`,
// `n := 2 * 4`, `data := (SELECT ...)`): DuckDB evaluates it just before the
// call runs, over the same snapshot as the statements around it, and the
// value is then checked like a literal.
type Expr string

// WhenArg is the argument every stage takes: `when := <boolean expression>`.
// A call whose when is false (or NULL) does not run; the runner records it
// as skipped, so a rerun of the step skips it again.
const WhenArg = "when"

// EvalArgs evaluates the call's expression arguments and its when := on the
// engine, then binds and checks all of them as BindArgs does. run is false
// when when := is false or NULL (args are then not bound).
func EvalArgs(ctx context.Context, eng *rsql.Engine, s Stmt) (args Args, run bool, err error) {
	if s.When != nil {
		v, err := evalValue(ctx, eng, s, *s.When)
		if err != nil {
			return Args{}, false, err
		}
		switch b := v.(type) {
		case nil:
			return Args{}, false, nil
		case bool:
			if !b {
				return Args{}, false, nil
			}
		default:
			return Args{}, false, &UsageError{Pos: s.When.Pos, Stmt: s.Text,
				Msg:  fmt.Sprintf("when := %v of stage %s: want a boolean, got %s", s.When.Value, s.Stage.Spec().Name, describe(v)),
				Hint: "write a condition, e.g. when := getvariable('step') % 10 = 0 or when := (SELECT count(*) > 0 FROM hard)"}
		}
	}
	if !s.Args.HasExpr() {
		return s.Args, true, nil
	}
	raw := make([]RawArg, len(s.Raw))
	for i, r := range s.Raw {
		raw[i] = r
		if _, ok := r.Value.(Expr); !ok {
			continue
		}
		v, err := evalValue(ctx, eng, s, r)
		if err != nil {
			return Args{}, false, err
		}
		raw[i].Value = v
	}
	a, err := BindArgs(s.Stage.Spec(), raw, s.Args.CallPos())
	if err == nil {
		a.fromExpr = map[string]bool{}
		for _, r := range s.Raw {
			if _, ok := r.Value.(Expr); ok {
				a.fromExpr[strings.ToLower(r.Name)] = true
			}
		}
	}
	if err != nil {
		if ue, ok := err.(*UsageError); ok {
			ue.Stmt = s.Text
			ue.Msg += " (evaluated at run time)"
		}
		return Args{}, false, err
	}
	return a, true, nil
}

// evalValue evaluates one argument (a literal is returned as is) and maps
// DuckDB's result onto the literal types: integers → int64, FLOAT, DOUBLE
// and DECIMAL → float64, VARCHAR → string, BOOLEAN → bool, NULL → nil.
func evalValue(ctx context.Context, eng *rsql.Engine, s Stmt, r RawArg) (any, error) {
	e, ok := r.Value.(Expr)
	if !ok {
		return r.Value, nil
	}
	q := "SELECT typeof(v), TRY_CAST(v AS BIGINT), TRY_CAST(v AS DOUBLE), TRY_CAST(v AS VARCHAR), TRY_CAST(v AS BOOLEAN) FROM (SELECT (" +
		string(e) + "\n) AS v)"
	var (
		typ string
		i   stdsql.NullInt64
		f   stdsql.NullFloat64
		str stdsql.NullString
		b   stdsql.NullBool
	)
	err := eng.Conn().QueryRowContext(ctx, q).Scan(&typ, &i, &f, &str, &b)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UsageError{Pos: r.Pos, Stmt: s.Text,
			Msg:  fmt.Sprintf("argument %s of stage %s: cannot evaluate %s", r.Name, s.Stage.Spec().Name, string(e)),
			Hint: firstLine(strings.TrimPrefix(err.Error(), "sql: "))}
	}
	typ = strings.ToUpper(typ)
	switch {
	case typ == "NULL" || !str.Valid:
		return nil, nil
	case typ == "BOOLEAN":
		return b.Bool, nil
	case intTypes[typ]:
		if !i.Valid {
			return nil, &UsageError{Pos: r.Pos, Stmt: s.Text, Msg: fmt.Sprintf("argument %s: %s = %s does not fit in 64 bits", r.Name, string(e), str.String)}
		}
		return i.Int64, nil
	case typ == "FLOAT" || typ == "DOUBLE" || strings.HasPrefix(typ, "DECIMAL"):
		return f.Float64, nil
	case typ == "VARCHAR":
		return str.String, nil
	}
	return nil, &UsageError{Pos: r.Pos, Stmt: s.Text,
		Msg:  fmt.Sprintf("argument %s of stage %s: %s is a %s", r.Name, s.Stage.Spec().Name, string(e), typ),
		Hint: "an argument evaluates to a string, a number, a boolean or NULL; cast it, e.g. CAST(x AS VARCHAR)"}
}

var intTypes = map[string]bool{
	"TINYINT": true, "SMALLINT": true, "INTEGER": true, "BIGINT": true, "HUGEINT": true,
	"UTINYINT": true, "USMALLINT": true, "UINTEGER": true, "UBIGINT": true, "UHUGEINT": true,
}

// evalNote renders the evaluated arguments of a call for its log line.
func evalNote(a Args, names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + fmtArg(a.vals[n])
	}
	return strings.Join(parts, " ")
}

func fmtArg(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return strconv.Quote(x)
	}
	return fmt.Sprint(v)
}
