package script

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValueKind is the type of a literal CALL argument.
type ValueKind int

const (
	String ValueKind = iota // 'text', E'te\xt', $$text$$ (Value.Str)
	Int                     // 42, -7, 1_000 (Value.Int)
	Float                   // 1.5, -.5, 1e-3, 2. (Value.Float)
	Bool                    // true, false, any case (Value.Bool)
	Null                    // NULL, any case
	Ident                   // a bare or "double-quoted" identifier (Value.Str); the caller decides whether it is acceptable
	Expr                    // any other SQL expression, as written (Value.Str): evaluated by DuckDB when the call runs
)

func (k ValueKind) String() string {
	switch k {
	case String:
		return "string"
	case Int:
		return "int"
	case Float:
		return "float"
	case Bool:
		return "bool"
	case Null:
		return "null"
	case Ident:
		return "identifier"
	case Expr:
		return "expression"
	}
	return fmt.Sprintf("ValueKind(%d)", int(k))
}

// Value is a literal argument of a CALL statement; Kind says which field holds it.
type Value struct {
	Kind  ValueKind
	Str   string // String (unescaped) and Ident (as written, or unescaped if quoted)
	Int   int64
	Float float64
	Bool  bool
}

// Any returns the value as a Go value: string, int64, float64, bool or nil.
func (v Value) Any() any {
	switch v.Kind {
	case String, Ident, Expr:
		return v.Str
	case Int:
		return v.Int
	case Float:
		return v.Float
	case Bool:
		return v.Bool
	}
	return nil
}

// String renders the value as SQL.
func (v Value) String() string {
	switch v.Kind {
	case String:
		return "'" + strings.ReplaceAll(v.Str, "'", "''") + "'"
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Float:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(v.Bool)
	case Null:
		return "NULL"
	case Ident, Expr:
		return v.Str
	}
	return "?"
}

// Call is a statement `CALL name(arg := value, ...)` with literal arguments.
type Call struct {
	Name      string // lower-cased if unquoted, as written if "quoted"
	Args      []Arg
	Line, Col int // position of the CALL keyword in the job file
}

// Arg is one named argument; Line and Col locate its name in the job file.
type Arg struct {
	Name      string // lower-cased if unquoted, as written if "quoted"
	Value     Value
	Line, Col int
}

// ParseCall recognises `CALL name(arg := value, ...)` (CALL in any case,
// `=>` accepted for `:=`, zero or more arguments, an optional trailing ';'
// and comments). Values are literals: '...' (also E'...', N'...', $$...$$)
// strings, integers, floats (1.5, .5, 2., 1e-3) with an optional sign,
// true/false, NULL, and bare or double-quoted identifiers (Kind Ident); any
// other balanced run of tokens up to the argument's ',' or ')' is an
// expression (Kind Expr, its text as written) for DuckDB to evaluate.
//
// Results:
//   - ok is true and call holds the parsed statement when it has that form;
//   - call is nil and ok false when the statement is not a CALL of a plain
//     name (for DuckDB);
//   - call is non-nil with only Name, Line and Col set and ok false when it
//     is `CALL name(...)` whose arguments are not all named literals
//     (positional, expressions, casts): a caller may send it to DuckDB or,
//     if name is a stage, report that stages take named literals only;
//   - err is non-nil (with call.Name set, ok false) when the statement is a
//     CALL of this form that cannot be represented: an integer outside int64
//     or an argument given twice; or (a *SyntaxError, call nil) when Text
//     has an unterminated quote or a '(' that is never closed.
func ParseCall(st Statement) (call *Call, ok bool, err error) {
	toks, lerr := significantTokens(st.Text)
	if lerr != nil {
		line, col := st.Position(lerr.at)
		return nil, false, &SyntaxError{Line: line, Col: col, Offset: st.Offset + lerr.at, Msg: lerr.msg}
	}
	p := &callParser{st: st, toks: toks}
	if !p.keyword("call") {
		return nil, false, nil
	}
	callTok := toks[0]
	p.i++
	name, nameOK := p.name()
	if !nameOK || !p.punct("(") {
		return nil, false, nil
	}
	if open, ok := unclosedParen(p); ok {
		line, col := st.Position(open.start)
		return nil, false, &SyntaxError{Line: line, Col: col, Offset: st.Offset + open.start,
			Msg: fmt.Sprintf("unclosed parenthesis: the ( of CALL %s is never closed (a ')' is missing before the statement's end)", name)}
	}
	p.i++
	line, col := st.Position(callTok.start)
	call = &Call{Name: name, Line: line, Col: col}
	partial := &Call{Name: name, Line: line, Col: col}
	seen := map[string]bool{}
	if p.punct(")") {
		p.i++
	} else {
		for {
			nameTok := p.peek()
			argName, ok := p.name()
			if !ok || !p.assign() {
				return partial, false, nil
			}
			start := p.i
			v, ok, err := p.value()
			if err != nil {
				return partial, false, err
			}
			if !ok || !(p.punct(",") || p.punct(")")) {
				p.i = start
				if v, ok = p.expr(); !ok {
					return partial, false, nil
				}
			}
			aline, acol := st.Position(nameTok.start)
			if seen[argName] {
				return partial, false, fmt.Errorf("script: %d:%d: CALL %s: argument %q given twice", aline, acol, name, argName)
			}
			seen[argName] = true
			call.Args = append(call.Args, Arg{Name: argName, Value: v, Line: aline, Col: acol})
			if p.punct(",") {
				p.i++
				continue
			}
			if p.punct(")") {
				p.i++
				break
			}
			return partial, false, nil
		}
	}
	if p.punct(";") {
		p.i++
	}
	if p.i != len(toks) {
		return partial, false, nil
	}
	return call, true, nil
}

// unclosedParen reports the innermost '(' left open at the end of the
// statement, scanning from the current token (the CALL's '(').
func unclosedParen(p *callParser) (token, bool) {
	var open []token
	for _, t := range p.toks[p.i:] {
		if t.kind != tokOther {
			continue
		}
		switch p.text(t) {
		case "(":
			open = append(open, t)
		case ")":
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
	}
	if len(open) == 0 {
		return token{}, false
	}
	return open[len(open)-1], true
}

// significantTokens lexes text and drops whitespace and comments.
func significantTokens(text string) ([]token, *lexError) {
	lx := lexer{src: text}
	var toks []token
	for {
		tok, ok, err := lx.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return toks, nil
		}
		if tok.kind != tokSpace {
			toks = append(toks, tok)
		}
	}
}

type callParser struct {
	st   Statement
	toks []token
	i    int
}

func (p *callParser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: tokSpace, start: len(p.st.Text), end: len(p.st.Text)}
}

func (p *callParser) text(t token) string { return p.st.Text[t.start:t.end] }

// keyword reports whether the current token is the unquoted identifier kw (any case).
func (p *callParser) keyword(kw string) bool {
	t := p.peek()
	return t.kind == tokIdent && strings.EqualFold(p.text(t), kw)
}

// punct reports whether the current token is the one-byte token s.
func (p *callParser) punct(s string) bool {
	t := p.peek()
	return (t.kind == tokOther || t.kind == tokSemicolon) && p.text(t) == s
}

// name consumes an unquoted (lower-cased) or double-quoted identifier.
func (p *callParser) name() (string, bool) {
	t := p.peek()
	switch t.kind {
	case tokIdent:
		p.i++
		return strings.ToLower(p.text(t)), true
	case tokQuotedIdent:
		s := p.text(t)
		if s[0] != '"' || len(s) < 3 { // U&"..." or ""
			return "", false
		}
		p.i++
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`), true
	}
	return "", false
}

// assign consumes ":=" or "=>" written without a space inside.
func (p *callParser) assign() bool {
	if p.i+1 >= len(p.toks) {
		return false
	}
	a, b := p.toks[p.i], p.toks[p.i+1]
	if a.kind != tokOther || b.kind != tokOther || a.end != b.start {
		return false
	}
	if op := p.text(a) + p.text(b); op != ":=" && op != "=>" {
		return false
	}
	p.i += 2
	return true
}

// value consumes one literal; ok is false for anything else.
func (p *callParser) value() (v Value, ok bool, err error) {
	t := p.peek()
	switch t.kind {
	case tokString:
		p.i++
		return Value{Kind: String, Str: unquoteString(p.text(t))}, true, nil
	case tokQuotedIdent:
		name, ok := p.name()
		return Value{Kind: Ident, Str: name}, ok, nil
	case tokIdent:
		p.i++
		s := p.text(t)
		switch strings.ToLower(s) {
		case "true":
			return Value{Kind: Bool, Bool: true}, true, nil
		case "false":
			return Value{Kind: Bool}, true, nil
		case "null":
			return Value{Kind: Null}, true, nil
		}
		return Value{Kind: Ident, Str: s}, true, nil
	case tokNumber:
		p.i++
		return p.number("", t)
	case tokOther:
		if s := p.text(t); s == "-" || s == "+" {
			if p.i+1 < len(p.toks) && p.toks[p.i+1].kind == tokNumber {
				n := p.toks[p.i+1]
				p.i += 2
				return p.number(s, n)
			}
		}
	}
	return Value{}, false, nil
}

// expr consumes an expression argument: every token up to the ',' or ')'
// that ends the argument at nesting depth 0. ok is false for an empty
// expression, a ';' inside it, or unbalanced brackets.
func (p *callParser) expr() (Value, bool) {
	first, depth := p.i, 0
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if t.kind == tokSemicolon {
			return Value{}, false
		}
		if t.kind != tokOther {
			continue
		}
		switch p.text(t) {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			if depth == 0 {
				if p.text(t) != ")" || p.i == first {
					return Value{}, false
				}
				return p.exprValue(first), true
			}
			depth--
		case ",":
			if depth == 0 {
				if p.i == first {
					return Value{}, false
				}
				return p.exprValue(first), true
			}
		}
	}
	return Value{}, false
}

func (p *callParser) exprValue(first int) Value {
	return Value{Kind: Expr, Str: p.st.Text[p.toks[first].start:p.toks[p.i-1].end]}
}

// number converts a tokNumber (with sign "-", "+" or "") to Int or Float.
func (p *callParser) number(sign string, t token) (Value, bool, error) {
	s := strings.ReplaceAll(p.text(t), "_", "")
	if sign == "-" {
		s = "-" + s
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			line, col := p.st.Position(t.start)
			return Value{}, false, fmt.Errorf("script: %d:%d: integer %s does not fit in 64 bits", line, col, s)
		}
		return Value{Kind: Int, Int: n}, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		line, col := p.st.Position(t.start)
		return Value{}, false, fmt.Errorf("script: %d:%d: number %s: %w", line, col, s, err)
	}
	return Value{Kind: Float, Float: f}, true, nil
}

// unquoteString returns the content of a tokString: '...' and N'...' with
// doubled quotes unescaped, E'...' with backslash escapes, $tag$...$tag$
// verbatim.
func unquoteString(s string) string {
	switch s[0] {
	case '$':
		d := dollarDelim(s, 0)
		return s[d : len(s)-d]
	case 'n', 'N':
		s = s[1:]
	case 'e', 'E':
		return unescapeE(s[2 : len(s)-1])
	}
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
}

// unescapeE decodes the body of an E'...' string as DuckDB's scanner does:
// \b \f \n \r \t, \ooo octal, \xhh hex, \uXXXX and \UXXXXXXXX code points,
// a doubled quote for a quote, and \c for any other c.
func unescapeE(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' && i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; {
		case c == 'b':
			b.WriteByte('\b')
		case c == 'f':
			b.WriteByte('\f')
		case c == 'n':
			b.WriteByte('\n')
		case c == 'r':
			b.WriteByte('\r')
		case c == 't':
			b.WriteByte('\t')
		case c >= '0' && c <= '7':
			j := i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(s[i:j], 8, 8)
			b.WriteByte(byte(n))
			i = j - 1
		case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
			j := i + 1
			for j < len(s) && j < i+3 && isHex(s[j]) {
				j++
			}
			n, _ := strconv.ParseUint(s[i+1:j], 16, 8)
			b.WriteByte(byte(n))
			i = j - 1
		case c == 'u' && hexRun(s, i+1) >= 4 || c == 'U' && hexRun(s, i+1) >= 8:
			w := 4
			if c == 'U' {
				w = 8
			}
			n, _ := strconv.ParseUint(s[i+1:i+1+w], 16, 32)
			r := rune(n)
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			i += w
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexRun(s string, i int) int {
	n := 0
	for i+n < len(s) && isHex(s[i+n]) {
		n++
	}
	return n
}
