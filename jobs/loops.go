package jobs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rljob/rljob/jobs/script"
)

// DefaultLoopMax is the most iterations of a WHILE loop, or of a FOR loop
// whose bounds are expressions, without a MAX n clause.
const DefaultLoopMax = 100

// MaxCallNumber bounds the call numbers a step of a job spans (Job.Slots):
// the loops' MAX × body sizes, multiplied through nesting.
const MaxCallNumber = 1_000_000

// Loop is a bounded loop of a job (docs/job-language-loops.md):
//
//	WHILE <condition> [MAX n] DO ... END WHILE;
//	FOR <var> IN <from>..<to> [MAX n] DO ... END FOR;
//
// Every statement of its body gets Stride call numbers per iteration, so a
// call is identified by its statement and its iteration: iteration k of a
// call whose Slot is s has call number s + k·Stride (plus the outer loops'
// shares). A step that is killed in a loop resumes exactly, as anywhere else.
type Loop struct {
	Kind script.ControlKind // script.While or script.For
	Pos  Pos                // of the WHILE or FOR keyword
	Cond LoopExpr           // WHILE: evaluated before each iteration
	// FOR: the variable (set with SET VARIABLE before each iteration,
	// readable with getvariable) and the inclusive bounds, evaluated once
	// when the loop starts.
	Var      string
	From, To LoopExpr
	// Max is the most iterations; a WHILE whose condition still holds
	// after Max iterations, or a FOR whose range is longer, is an error.
	Max int
	// Head and End are the Job.Stmts indices of the header and of END.
	Head, End int
	// Stride is the number of call numbers one iteration spans.
	Stride int
}

// LoopExpr is a SQL expression of a loop header, with its position.
type LoopExpr struct {
	Text string
	Pos  Pos
}

// newLoop checks a WHILE or FOR header.
func newLoop(file string, c *script.Control, text string) (*Loop, error) {
	at := func(e script.CtlExpr) LoopExpr {
		return LoopExpr{Text: e.Text, Pos: Pos{File: file, Line: e.Line, Col: e.Col}}
	}
	l := &Loop{Kind: c.Kind, Pos: Pos{File: file, Line: c.Line, Col: c.Col}, Max: int(c.Max)}
	maxPos := Pos{File: file, Line: c.MaxPos[0], Col: c.MaxPos[1]}
	if c.Max > MaxCallNumber {
		return nil, &UsageError{Pos: maxPos, Stmt: text, Msg: fmt.Sprintf("MAX %d: a loop runs at most %d iterations", c.Max, MaxCallNumber)}
	}
	if c.Kind == script.While {
		l.Cond = at(c.Cond)
		if l.Max == 0 {
			l.Max = DefaultLoopMax
		}
		return l, nil
	}
	l.Var, l.From, l.To = c.Var, at(c.From), at(c.To)
	for _, r := range ReservedVariables {
		if strings.EqualFold(l.Var, r) {
			return nil, &UsageError{Pos: l.Pos, Stmt: text, Msg: fmt.Sprintf("FOR %s: %q is set by the runner", l.Var, r),
				Hint: "name the loop variable otherwise, e.g. FOR i IN 1..4 DO"}
		}
	}
	if !identRE.MatchString(l.Var) {
		return nil, &UsageError{Pos: l.Pos, Stmt: text, Msg: fmt.Sprintf("FOR %s: the variable must be a plain identifier", l.Var),
			Hint: "e.g. FOR i IN 1..4 DO; read it with getvariable('i')"}
	}
	from, err1 := strconv.ParseInt(l.From.Text, 10, 64)
	to, err2 := strconv.ParseInt(l.To.Text, 10, 64)
	if err1 != nil || err2 != nil { // bounds known when the loop starts
		if l.Max == 0 {
			l.Max = DefaultLoopMax
		}
		return l, nil
	}
	n := max(to-from+1, 0)
	switch {
	case l.Max == 0:
		l.Max = int(max(n, 1))
	case n > int64(l.Max):
		return nil, &UsageError{Pos: maxPos, Stmt: text, Msg: fmt.Sprintf("FOR %s IN %d..%d runs %d iterations, more than its MAX %d", l.Var, from, to, n, l.Max),
			Hint: "raise MAX or shorten the range"}
	}
	if n > MaxCallNumber {
		return nil, &UsageError{Pos: l.From.Pos, Stmt: text, Msg: fmt.Sprintf("FOR %s IN %d..%d: a loop runs at most %d iterations", l.Var, from, to, MaxCallNumber)}
	}
	return l, nil
}

// layoutSlots gives every statement its Slot and every loop its Stride,
// and sets Job.Slots.
func layoutSlots(job *Job) error {
	next, err := layout(job.Stmts, 0, len(job.Stmts), 0)
	if err != nil {
		return err
	}
	job.Slots = next
	return nil
}

// layout assigns slots to stmts[from:to] starting at base; it returns the
// slot after them.
func layout(stmts []Stmt, from, to, base int) (int, error) {
	for i := from; i < to; {
		s := &stmts[i]
		s.Slot = base
		if s.Loop == nil {
			base++
			i++
			continue
		}
		l := s.Loop
		after, err := layout(stmts, i+1, l.End, base+1)
		if err != nil {
			return 0, err
		}
		l.Stride = after - (base + 1)
		base += 1 + l.Max*l.Stride
		if base > MaxCallNumber {
			return 0, &UsageError{Pos: l.Pos, Stmt: s.Text,
				Msg:  fmt.Sprintf("%s loop spans %d call numbers (MAX %d × %d per iteration), more than %d", l.Kind, l.Max*l.Stride, l.Max, l.Stride, MaxCallNumber),
				Hint: "lower MAX n (each iteration reserves call numbers for all the statements of the body)"}
		}
		stmts[l.End].Slot = base
		base++
		i = l.End + 1
	}
	return base, nil
}
