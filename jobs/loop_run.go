package jobs

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/jobs/script"
	rsql "github.com/rljob/rljob/sql"
)

// cursor is where a step's execution is: the next statement (pc), the call
// number offset of the current loop iterations, and the open loops.
type cursor struct {
	pc     int
	offset int
	frames []frame
}

// frame is one running loop.
type frame struct {
	loop *Loop
	iter int // 0-based iteration in progress
	base int // the cursor's offset outside the loop
	from int64
	n    int64 // FOR: the number of iterations
}

// call is the call number of s at the cursor.
func (c *cursor) call(s Stmt) int { return s.Slot + c.offset }

// iterations renders the open loops' iterations for logs ("" outside loops).
func (c *cursor) iterations() string {
	parts := make([]string, len(c.frames))
	for i, f := range c.frames {
		parts[i] = fmt.Sprint(f.iter + 1)
	}
	return strings.Join(parts, ",")
}

// control runs a loop header or END at the cursor: it decides whether
// (another) iteration runs, sets the FOR variable, and moves the cursor.
func (r *stepper) control(ctx context.Context, s Stmt, c *cursor, log zerolog.Logger) error {
	l := s.Loop
	if s.Index == l.Head {
		f := frame{loop: l, base: c.offset}
		if l.Kind == script.For {
			if err := r.forRange(ctx, l, &f); err != nil {
				return err
			}
		}
		ok, err := r.loopGoesOn(ctx, &f)
		if err != nil || !ok {
			c.pc = l.End + 1
			return err
		}
		c.frames = append(c.frames, f)
	} else {
		f := &c.frames[len(c.frames)-1]
		f.iter++
		ok, err := r.loopGoesOn(ctx, f)
		if err != nil {
			return err
		}
		if !ok {
			c.offset = f.base
			c.frames = c.frames[:len(c.frames)-1]
			c.pc = l.End + 1
			log.Debug().Str("at", l.Pos.String()).Int("iterations", f.iter).Msg("loop done")
			return nil
		}
		if f.iter >= l.Max {
			return &UsageError{Pos: l.Pos, Stmt: r.job.Stmts[l.Head].Text,
				Msg: fmt.Sprintf("WHILE loop ran its MAX %d iterations and its condition %s is still true", l.Max, l.Cond.Text),
				Hint: "raise MAX n (default " + fmt.Sprint(DefaultLoopMax) + ") or make the condition false sooner; the step stays incomplete: " +
					"after changing the job file, rljob lake drop-step removes its units so that the step can run again"}
		}
	}
	f := &c.frames[len(c.frames)-1]
	c.offset = f.base + f.iter*l.Stride
	c.pc = l.Head + 1
	if l.Kind == script.For {
		if err := r.eng.SetVariable(ctx, l.Var, f.from+int64(f.iter)); err != nil {
			return fmt.Errorf("jobs: %s: set variable %s: %w", l.Pos, l.Var, err)
		}
	}
	log.Debug().Str("at", l.Pos.String()).Str("iteration", c.iterations()).Msg("loop iteration")
	return nil
}

// loopGoesOn reports whether iteration f.iter of the loop runs.
func (r *stepper) loopGoesOn(ctx context.Context, f *frame) (bool, error) {
	if f.loop.Kind == script.For {
		return int64(f.iter) < f.n, nil
	}
	return r.whileCond(ctx, f.loop)
}

// whileCond evaluates a WHILE condition: NULL is false, as in SQL's WHERE.
func (r *stepper) whileCond(ctx context.Context, l *Loop) (bool, error) {
	typ, v, err := evalLoopExpr(ctx, r.eng, l.Cond, "BOOLEAN")
	if err != nil {
		return false, err
	}
	switch {
	case typ == "NULL":
		return false, nil
	case typ != "BOOLEAN":
		return false, &UsageError{Pos: l.Cond.Pos, Stmt: r.job.Stmts[l.Head].Text,
			Msg:  fmt.Sprintf("WHILE condition %s is a %s, not a boolean", l.Cond.Text, typ),
			Hint: "write a condition, e.g. WHILE (SELECT count(*) FROM kept) < 32 MAX 8 DO"}
	}
	return v.Valid && v.String == "true", nil
}

// forRange evaluates a FOR loop's bounds into f.
func (r *stepper) forRange(ctx context.Context, l *Loop, f *frame) error {
	var b [2]int64
	for i, e := range []LoopExpr{l.From, l.To} {
		typ, v, err := evalLoopExpr(ctx, r.eng, e, "BIGINT")
		if err != nil {
			return err
		}
		if !intTypes[typ] || !v.Valid {
			return &UsageError{Pos: e.Pos, Stmt: r.job.Stmts[l.Head].Text,
				Msg:  fmt.Sprintf("FOR %s: bound %s is %s, not an integer", l.Var, e.Text, describeSQL(typ, v.Valid)),
				Hint: "a FOR range is two integers, e.g. FOR i IN 1..getvariable('rounds') DO (with --set rounds=4)"}
		}
		fmt.Sscan(v.String, &b[i])
	}
	f.from, f.n = b[0], max(b[1]-b[0]+1, 0)
	if f.n > int64(l.Max) {
		return &UsageError{Pos: l.Pos, Stmt: r.job.Stmts[l.Head].Text,
			Msg:  fmt.Sprintf("FOR %s IN %d..%d runs %d iterations, more than its MAX %d", l.Var, b[0], b[1], f.n, l.Max),
			Hint: fmt.Sprintf("raise MAX n (default %d) or shorten the range", DefaultLoopMax)}
	}
	return nil
}

func describeSQL(typ string, valid bool) string {
	if typ == "NULL" || !valid && intTypes[typ] {
		return "NULL"
	}
	return "a " + typ
}

// evalLoopExpr evaluates a loop expression: its DuckDB type and its value
// cast to as (NULL when it does not cast).
func evalLoopExpr(ctx context.Context, eng *rsql.Engine, e LoopExpr, as string) (string, stdsql.NullString, error) {
	var (
		typ string
		v   stdsql.NullString
	)
	q := "SELECT typeof(v), CAST(TRY_CAST(v AS " + as + ") AS VARCHAR) FROM (SELECT (" + e.Text + "\n) AS v)"
	if err := eng.Conn().QueryRowContext(ctx, q).Scan(&typ, &v); err != nil {
		if ctx.Err() != nil {
			return "", v, ctx.Err()
		}
		return "", v, &UsageError{Pos: e.Pos, Msg: fmt.Sprintf("cannot evaluate %s", e.Text),
			Hint: firstLine(strings.TrimPrefix(err.Error(), "sql: "))}
	}
	return strings.ToUpper(typ), v, nil
}
