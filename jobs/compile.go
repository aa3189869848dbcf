package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rljob/rljob/jobs/script"
	rsql "github.com/rljob/rljob/sql"
)

// Job is a parsed and checked job file: its statements in order, each either
// plain SQL for DuckDB or a call of a registered stage with checked
// arguments.
type Job struct {
	File string // path as given
	// SHA256 is the job's identity: the hex sha256 of the file's bytes, and
	// of every included file's name and bytes after them (a job without
	// INCLUDE: just the file's bytes).
	SHA256 string
	Stmts  []Stmt
	// Includes are the included files, in the order they were read (paths
	// relative to the current directory, as the job file's is).
	Includes []string
	// Slots is how many call numbers a step of the job spans: the number
	// of statements of a job without loops (see Stmt.Slot).
	Slots int
}

// Stmt is one statement of a job.
type Stmt struct {
	Pos   Pos
	Text  string
	Index int // 0-based index in Job.Stmts
	// Slot is the statement's call number in the first iteration of its
	// loops (its Index in a job without loops or includes): a stage call's
	// Call in its units and call record is Slot plus, for each enclosing
	// loop, iteration × that loop's Stride.
	Slot int
	// Loop is set on a loop's header (Index == Loop.Head) and on its END.
	Loop  *Loop
	Stage Stage // nil for SQL
	Args  Args
	// CallName is set for a CALL of a name that is not a stage: it must be a
	// DuckDB table function or pragma (checked by CheckCatalog).
	CallName string
	// Raw are the stage call's arguments as written (expressions
	// unevaluated), When its when := argument (nil: always runs).
	Raw  []RawArg
	When *RawArg
}

// LoadJob reads and compiles a job file. A missing file is a UsageError.
func LoadJob(path string, reg *Registry) (*Job, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &UsageError{Msg: fmt.Sprintf("job file %s does not exist", path), Hint: "give the path of a .sql job file, e.g. rljob run examples/gsm8k/gsm8k.sql"}
		}
		return nil, &UsageError{Msg: fmt.Sprintf("cannot read job file %s", path), Err: err}
	}
	return CompileJob(path, string(src), reg)
}

// CompileJob splits src into statements, expands its INCLUDEs (read from
// the file system, relative to file's folder), matches its loops and checks
// every stage call against its stage's declared arguments. Nothing is
// executed.
func CompileJob(file, src string, reg *Registry) (*Job, error) {
	if reg == nil {
		reg = DefaultRegistry
	}
	c := &compiler{reg: reg, job: &Job{File: file}, hash: sha256.New()}
	c.hash.Write([]byte(src))
	if abs, err := filepath.Abs(file); err == nil {
		c.stack = []string{abs}
	}
	if err := c.file(file, src); err != nil {
		return nil, err
	}
	if err := layoutSlots(c.job); err != nil {
		return nil, err
	}
	c.job.SHA256 = hex.EncodeToString(c.hash.Sum(nil))
	return c.job, nil
}

// compileStmt compiles one SQL or CALL statement of file.
func compileStmt(reg *Registry, file string, st script.Statement) (Stmt, error) {
	s := Stmt{Pos: Pos{File: file, Line: st.Line, Col: st.Col}, Text: st.Text}
	call, ok, err := script.ParseCall(st)
	if err != nil {
		var se *script.SyntaxError
		if call != nil && !errors.As(err, &se) {
			return s, &UsageError{Pos: Pos{File: file, Line: call.Line, Col: call.Col}, Msg: err.Error(), Stmt: st.Text}
		}
		return s, scriptError(file, err, st.Text)
	}
	if call == nil {
		return s, nil
	}
	stage, isStage := reg.Lookup(call.Name)
	switch {
	case isStage && !ok:
		return s, &UsageError{
			Pos:  Pos{File: file, Line: call.Line, Col: call.Col},
			Msg:  fmt.Sprintf("stage %s takes named literal arguments only", stage.Spec().Name),
			Stmt: st.Text,
			Hint: "write CALL " + stage.Spec().Name + "(name := 'value', ...); compute values in SQL first (e.g. a table) and pass its name",
		}
	case !isStage:
		s.CallName = call.Name
		return s, nil
	}
	var raw []RawArg
	for _, a := range call.Args {
		var v any = a.Value.Any()
		switch a.Value.Kind {
		case script.Ident:
			v = Ident(a.Value.Str)
		case script.Expr:
			v = Expr(a.Value.Str)
		}
		r := RawArg{Name: a.Name, Value: v, Pos: Pos{File: file, Line: a.Line, Col: a.Col}}
		if strings.EqualFold(a.Name, WhenArg) {
			s.When = &r
			continue
		}
		raw = append(raw, r)
	}
	s.Raw = raw
	args, err := BindArgs(stage.Spec(), raw, Pos{File: file, Line: call.Line, Col: call.Col})
	if err != nil {
		var ue *UsageError
		if errors.As(err, &ue) {
			ue.Stmt = st.Text
		}
		return s, err
	}
	s.Stage, s.Args = stage, args
	return s, nil
}

// scriptError converts a jobs/script error (with its position when it has
// one) into a UsageError.
func scriptError(file string, err error, stmt string) error {
	var se *script.SyntaxError
	if errors.As(err, &se) {
		return &UsageError{Pos: Pos{File: file, Line: se.Line, Col: se.Col}, Msg: se.Msg, Stmt: stmt}
	}
	return &UsageError{Pos: Pos{File: file}, Msg: err.Error(), Stmt: stmt}
}

// CheckCatalog checks the job against the engine, without running it:
//
//   - a CALL of a name that is not a stage must name a DuckDB table function,
//     table macro or pragma (CALL sends it to DuckDB); otherwise it is an
//     unknown stage, reported with the closest stage name and the list;
//   - every SQL statement must parse (DuckDB's parser, via PREPARE; binder and
//     catalog errors are not reported here, since a table may be created by
//     an earlier statement of the job).
func CheckCatalog(ctx context.Context, e *rsql.Engine, job *Job, reg *Registry) error {
	if reg == nil {
		reg = DefaultRegistry
	}
	for _, s := range job.Stmts {
		if s.Loop != nil {
			if err := checkLoopExprs(ctx, e, s); err != nil {
				return err
			}
			continue
		}
		if s.Stage != nil {
			if err := checkExprs(ctx, e, s); err != nil {
				return err
			}
			continue
		}
		if s.CallName != "" {
			ok, err := isDuckDBProcedure(ctx, e, s.CallName)
			if err != nil {
				return err
			}
			if !ok {
				hint := "stages: " + strings.Join(reg.Names(), ", ")
				if m := closest(strings.ToLower(s.CallName), reg.Names()); m != "" {
					hint = fmt.Sprintf("did you mean %s? %s", m, hint)
				}
				return &UsageError{
					Pos:  s.Pos,
					Msg:  fmt.Sprintf("unknown stage %q (not an rljob stage nor a DuckDB table function)", s.CallName),
					Stmt: s.Text,
					Hint: hint + " (rljob stages lists them)",
				}
			}
			continue
		}
		if err := parseOnly(ctx, e, s.Text); err != nil {
			return ClassifySQL(err, s.Pos, s.Text)
		}
	}
	return nil
}

// checkExprs checks the grammar of a call's expression arguments (their
// values are known only when the call runs).
func checkExprs(ctx context.Context, e *rsql.Engine, s Stmt) error {
	raw := s.Raw
	if s.When != nil {
		raw = append(raw[:len(raw):len(raw)], *s.When)
	}
	for _, r := range raw {
		x, ok := r.Value.(Expr)
		if !ok {
			continue
		}
		if err := parseOnly(ctx, e, "SELECT ("+string(x)+"\n)"); err != nil {
			return &UsageError{Pos: r.Pos, Stmt: s.Text,
				Msg:  fmt.Sprintf("argument %s of stage %s: %s is not a valid expression", r.Name, s.Stage.Spec().Name, string(x)),
				Hint: firstLine(strings.TrimPrefix(err.Error(), "sql: "))}
		}
	}
	return nil
}

// checkLoopExprs checks the grammar of a loop header's expressions.
func checkLoopExprs(ctx context.Context, e *rsql.Engine, s Stmt) error {
	if s.Index != s.Loop.Head {
		return nil
	}
	for _, x := range []LoopExpr{s.Loop.Cond, s.Loop.From, s.Loop.To} {
		if x.Text == "" {
			continue
		}
		if err := parseOnly(ctx, e, "SELECT ("+x.Text+"\n)"); err != nil {
			return &UsageError{Pos: x.Pos, Stmt: s.Text,
				Msg:  fmt.Sprintf("%s: %s is not a valid expression", s.Loop.Kind, x.Text),
				Hint: firstLine(strings.TrimPrefix(err.Error(), "sql: "))}
		}
	}
	return nil
}

func isDuckDBProcedure(ctx context.Context, e *rsql.Engine, name string) (bool, error) {
	var n int
	err := e.Conn().QueryRowContext(ctx,
		`SELECT count(*) FROM duckdb_functions() WHERE lower(function_name) = lower(?) AND function_type IN ('table', 'table_macro', 'pragma')`,
		name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("jobs: look up %q in duckdb_functions(): %w", name, err)
	}
	return n > 0, nil
}

// parseOnly prepares stmt and returns only grammar errors ("syntax error
// at or near ...", "unterminated ..."). DuckDB also reports some binding
// problems as parser errors (read_json(getvariable('x')) before x is set);
// those are left for the statement's execution to report.
func parseOnly(ctx context.Context, e *rsql.Engine, stmt string) error {
	p, err := e.Conn().PrepareContext(ctx, stmt)
	if err == nil {
		return p.Close()
	}
	if kind, _ := rsql.Classify(err); kind == rsql.KindSyntax {
		return err
	}
	return nil
}
