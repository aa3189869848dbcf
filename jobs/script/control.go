package script

import (
	"fmt"
	"strconv"
	"strings"
)

// ControlKind says which job-language statement a Control is. These are
// rljob's own statements, read before anything goes to DuckDB (which has no
// scripting): bounded loops and includes (docs/job-language-loops.md).
type ControlKind int

const (
	While    ControlKind = iota + 1 // WHILE <condition> [MAX n] DO
	For                             // FOR <var> IN <from>..<to> [MAX n] DO
	EndWhile                        // END WHILE
	EndFor                          // END FOR
	Include                         // INCLUDE 'file.sql'
)

func (k ControlKind) String() string {
	switch k {
	case While:
		return "WHILE"
	case For:
		return "FOR"
	case EndWhile:
		return "END WHILE"
	case EndFor:
		return "END FOR"
	case Include:
		return "INCLUDE"
	}
	return fmt.Sprintf("ControlKind(%d)", int(k))
}

// Control is a control statement. Line and Col locate its keyword; the
// expressions are SQL as written, each with its position.
type Control struct {
	Kind      ControlKind
	Line, Col int
	// Cond is a WHILE's condition.
	Cond CtlExpr
	// Var, From and To are a FOR's variable and bounds (inclusive).
	Var      string
	From, To CtlExpr
	// Max is the MAX n clause (0: none written).
	Max    int64
	MaxPos [2]int // line, col of n
	// Path is an INCLUDE's file, as written (unquoted).
	Path string
}

// CtlExpr is a SQL expression of a control statement, with the 1-based line
// and column of its first character.
type CtlExpr struct {
	Text      string
	Line, Col int
}

// ParseControl recognises a control statement at the start of st: WHILE and
// FOR headers (up to their DO), END WHILE, END FOR and INCLUDE. ctl is nil
// when st is not one (it is SQL or a CALL). A loop header shares its
// statement with the first statement of its body ("WHILE x DO CALL a();"
// is one statement to the splitter): rest is that body statement, nil when
// nothing follows DO. Errors are *SyntaxError values naming the position.
func ParseControl(st Statement) (ctl *Control, rest *Statement, err error) {
	toks, lerr := significant(st.Text)
	if lerr != nil {
		line, col := st.Position(lerr.at)
		return nil, nil, &SyntaxError{Line: line, Col: col, Offset: st.Offset + lerr.at, Msg: lerr.msg}
	}
	if len(toks) == 0 || toks[0].kind != tokIdent {
		return nil, nil, nil
	}
	p := ctlParser{st: st, toks: toks}
	switch strings.ToUpper(p.text(0)) {
	case "WHILE":
		return p.header(While)
	case "FOR":
		return p.header(For)
	case "END":
		if len(toks) == 2 && toks[1].kind == tokIdent {
			switch strings.ToUpper(p.text(1)) {
			case "WHILE":
				return p.ctl(EndWhile), nil, nil
			case "FOR":
				return p.ctl(EndFor), nil, nil
			}
		}
		if len(toks) >= 2 && toks[1].kind == tokIdent && (strings.EqualFold(p.text(1), "WHILE") || strings.EqualFold(p.text(1), "FOR")) {
			return nil, nil, p.errAt(2, "END "+strings.ToUpper(p.text(1))+" ends a statement: put a ';' after it")
		}
		return nil, nil, nil
	case "INCLUDE":
		if len(toks) != 2 || toks[1].kind != tokString {
			return nil, nil, p.errAt(1, "INCLUDE takes one quoted file name: INCLUDE 'core/grpo_step.sql';")
		}
		c := p.ctl(Include)
		c.Path = unquoteString(p.text(1))
		return c, nil, nil
	}
	return nil, nil, nil
}

// significant lexes s into its tokens without whitespace and comments.
func significant(s string) ([]token, *lexError) {
	lx := lexer{src: s}
	var out []token
	for {
		t, ok, err := lx.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		if t.kind == tokSpace {
			continue
		}
		// "1..3" lexes as 1, '.', .3 (a number may start with '.'): split
		// the number so that a FOR range is always '.' '.'.
		if n := len(out); t.kind == tokNumber && s[t.start] == '.' && n > 0 && out[n-1].kind == tokOther && out[n-1].end == t.start && s[t.start-1] == '.' {
			out = append(out, token{kind: tokOther, start: t.start, end: t.start + 1})
			t.start++
		}
		out = append(out, t)
	}
}

type ctlParser struct {
	st   Statement
	toks []token
}

func (p *ctlParser) text(i int) string { return p.st.Text[p.toks[i].start:p.toks[i].end] }

func (p *ctlParser) isWord(i int, w string) bool {
	return i < len(p.toks) && p.toks[i].kind == tokIdent && strings.EqualFold(p.text(i), w)
}

func (p *ctlParser) ctl(k ControlKind) *Control {
	line, col := p.st.Position(p.toks[0].start)
	return &Control{Kind: k, Line: line, Col: col}
}

// errAt is a SyntaxError at token i (at the statement's end past the last).
func (p *ctlParser) errAt(i int, msg string) error {
	off := len(p.st.Text)
	if i < len(p.toks) {
		off = p.toks[i].start
	}
	line, col := p.st.Position(off)
	return &SyntaxError{Line: line, Col: col, Offset: p.st.Offset + off, Msg: msg}
}

// expr is the source text of tokens [i, j) with its position.
func (p *ctlParser) expr(i, j int) CtlExpr {
	line, col := p.st.Position(p.toks[i].start)
	return CtlExpr{Text: p.st.Text[p.toks[i].start:p.toks[j-1].end], Line: line, Col: col}
}

// header parses a WHILE or FOR header up to its DO.
func (p *ctlParser) header(k ControlKind) (*Control, *Statement, error) {
	c := p.ctl(k)
	do := p.topLevel(1, func(i int) bool { return p.isWord(i, "DO") })
	if do < 0 {
		return nil, nil, p.errAt(len(p.toks), k.String()+" needs DO after its "+map[ControlKind]string{While: "condition", For: "range"}[k]+
			": "+map[ControlKind]string{While: "WHILE <condition> [MAX n] DO ... END WHILE;", For: "FOR i IN 1..10 DO ... END FOR;"}[k])
	}
	end := do
	if do >= 3 && p.isWord(do-2, "MAX") && p.toks[do-1].kind == tokNumber {
		n, err := strconv.ParseInt(strings.ReplaceAll(p.text(do-1), "_", ""), 10, 64)
		if err != nil || n < 1 {
			return nil, nil, p.errAt(do-1, "MAX takes a positive integer (the most iterations the loop may run)")
		}
		c.Max = n
		c.MaxPos[0], c.MaxPos[1] = p.st.Position(p.toks[do-1].start)
		end = do - 2
	} else if m := p.topLevel(1, func(i int) bool { return i < do && p.isWord(i, "MAX") && (i+1 >= len(p.toks) || p.text(i+1) != "(") }); m >= 0 {
		return nil, nil, p.errAt(m+1, "MAX takes a positive integer (the most iterations the loop may run), just before DO")
	}
	var err error
	if k == While {
		if end <= 1 {
			return nil, nil, p.errAt(1, "WHILE needs a condition: WHILE <condition> [MAX n] DO")
		}
		c.Cond = p.expr(1, end)
	} else {
		err = p.forRange(c, end)
	}
	if err != nil {
		return nil, nil, err
	}
	if do+1 == len(p.toks) {
		return c, nil, nil
	}
	off := p.toks[do+1].start
	line, col := p.st.Position(off)
	rest := &Statement{Text: p.st.Text[off:], Line: line, Col: col, Offset: p.st.Offset + off, Index: p.st.Index}
	return c, rest, nil
}

// forRange parses "<var> IN <from>..<to>" from token 1 up to token end.
func (p *ctlParser) forRange(c *Control, end int) error {
	if end < 2 || p.toks[1].kind != tokIdent || p.isWord(1, "IN") {
		return p.errAt(1, "FOR needs a variable name: FOR i IN 1..10 DO")
	}
	c.Var = p.text(1)
	if !p.isWord(2, "IN") {
		return p.errAt(2, "FOR "+c.Var+" needs IN <from>..<to>: FOR "+c.Var+" IN 1..10 DO")
	}
	dots := p.topLevel(3, func(i int) bool {
		return i+1 < end && p.text(i) == "." && p.text(i+1) == "." && p.toks[i].end == p.toks[i+1].start
	})
	if dots < 0 || dots >= end {
		return p.errAt(3, "FOR needs a range <from>..<to> (inclusive integers), e.g. 1..10")
	}
	if dots == 3 {
		return p.errAt(3, "the range needs a first value before '..'")
	}
	if dots+2 >= end {
		return p.errAt(dots+2, "the range needs a last value after '..'")
	}
	c.From, c.To = p.expr(3, dots), p.expr(dots+2, end)
	return nil
}

// topLevel returns the first token index >= from, outside parentheses and
// brackets, for which match holds; -1 if none.
func (p *ctlParser) topLevel(from int, match func(int) bool) int {
	depth := 0
	for i := from; i < len(p.toks); i++ {
		if p.toks[i].kind == tokOther {
			switch p.text(i) {
			case "(", "[", "{":
				depth++
				continue
			case ")", "]", "}":
				depth--
				continue
			}
		}
		if depth == 0 && match(i) {
			return i
		}
	}
	return -1
}
