package verify

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// MathEqual reports whether two final answers (LaTeX or plain text, as in
// MATH) are the same. Both are normalised (normalizeMath), then, in order:
//
//  1. equal normalised strings match;
//  2. two integers (thousands commas allowed) match when equal; other
//     values that evaluate as numbers (decimals, a/b, \frac, \sqrt, \pi,
//     + - * / ^ \cdot \times, a mixed number such as 2\frac{1}{2}) match
//     when |a-b| <= 1e-6 * max(|a|, |b|);
//  3. tuples and intervals, "(a, b)", "[a, b)", match element by element
//     with the same brackets; sets "\{a, b\}" and bare lists "a, b" match as
//     multisets; "\cup" unions and pmatrix/bmatrix entries match in order;
//     elements are compared with these same rules.
//
// An empty prediction never matches.
func MathEqual(pred, gold string) bool {
	a, b := normalizeMath(pred), normalizeMath(gold)
	if a == "" || b == "" {
		return false
	}
	return equalNormalized(a, b, 0)
}

var (
	// \left( and \right], but not \leftarrow or \rightarrow.
	leftRightRE = regexp.MustCompile(`\\(?:left|right)(?:\.|\b)`)
	// ^\circ, ^{\circ}, \degree(s).
	degreeRE = regexp.MustCompile(`\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degrees?\b`)
	// Font and text wrappers whose argument is kept: \text{abc} -> abc.
	textCmdRE = regexp.MustCompile(`\\(?:text|textrm|textbf|textit|textnormal|mathrm|mathbf|mathit|mathsf|mbox|operatorname)\s*\{`)
	// A unit written as text after a value: "5.4 \text{ cents}", "3\mbox{ cm}^2".
	textUnitRE = regexp.MustCompile(`\\(?:text|textrm|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?[23]\}?)?\s*$`)
	// Plain unit words after a value: "10 cm", "4 square units".
	unitWordRE = regexp.MustCompile(`(?i)^(.*[0-9}).])\s+(?:(?:square|sq\.?|cubic)\s+)?(?:units?|cm|mm|km|m|meters?|metres?|centimeters?|inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mph|cents?|dollars?|hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|degrees?|pounds?|lbs?|ounces?|oz|kg|grams?|g|liters?|litres?|gallons?|people|students|ways|cookies|pages|marbles|coins|points)(?:\^\{?[23]\}?)?\.?$`)
	// x = ..., \theta = ..., a_1 = ..., f(x) = ...: the answer is the right side.
	equationLHSRE = regexp.MustCompile(`^\s*(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:\([a-z]\))?\s*$`)
	// \frac12 -> \frac{1}{2}, \frac1{2} -> \frac{1}{2}, \frac{1}2 -> \frac{1}{2}.
	fracShortRE  = regexp.MustCompile(`\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])`)
	fracShort1RE = regexp.MustCompile(`\\frac\s*([0-9A-Za-z])\s*\{`)
	fracShort2RE = regexp.MustCompile(`(\\frac\{[^{}]*\})([0-9A-Za-z])`)
	sqrtShortRE  = regexp.MustCompile(`\\sqrt\s*([0-9A-Za-z])`)
	// x^{2} -> x^2, a_{9} -> a_9.
	singleBraceRE = regexp.MustCompile(`([\^_])\{([0-9A-Za-z])\}`)
	simpleFracRE  = regexp.MustCompile(`^(-?[0-9]+)/([0-9]+)$`)
	thousandsRE   = regexp.MustCompile(`^-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$`)
	mixedRE       = regexp.MustCompile(`^(-?)([0-9]+)\\frac\{([0-9]+)\}\{([0-9]+)\}$`)
	choiceRE      = regexp.MustCompile(`^\(([A-Za-z])\)$`)
)

// normalizeMath rewrites an answer into a canonical string: unicode math
// symbols to LaTeX, surrounding $ and \( \) removed, spacing macros (\! \,
// \; \: \quad ~) and \left/\right dropped, \dfrac/\tfrac to \frac, degrees
// and percent signs dropped, trailing units dropped, \text{x} to x,
// "x = 5" to 5, \frac12 to \frac{1}{2}, a/b to \frac{a}{b}, x^{2} to x^2,
// spaces removed, a trailing '.' removed.
func normalizeMath(s string) string {
	s = strings.NewReplacer(
		"−", "-", "×", `\times `, "·", `\cdot `, "÷", `\div `, "π", `\pi `, "°", "",
		"√", `\sqrt`, "∞", `\infty `, "\u00a0", " ", "≤", `\le `, "≥", `\ge `, "\n", " ",
	).Replace(s)
	s = strings.TrimSpace(s)
	for {
		t := strings.TrimSpace(s)
		switch {
		case len(t) >= 2 && strings.HasPrefix(t, "$") && strings.HasSuffix(t, "$"):
			t = strings.Trim(t, "$")
		case strings.HasPrefix(t, `\(`) && strings.HasSuffix(t, `\)`):
			t = t[2 : len(t)-2]
		case strings.HasPrefix(t, `\[`) && strings.HasSuffix(t, `\]`):
			t = t[2 : len(t)-2]
		}
		if t == s {
			break
		}
		s = t
	}
	s = strings.ReplaceAll(s, `\$`, "")
	s = strings.ReplaceAll(s, "$", "")
	// `\\` (a LaTeX row break) maps to itself first so that the `\ `
	// (spacing) rule cannot eat its second backslash.
	s = strings.NewReplacer(`\\`, `\\`, `\!`, "", `\,`, " ", `\;`, " ", `\:`, " ", `\ `, " ", `\qquad`, " ", `\quad`, " ",
		`\displaystyle`, "", "~", " ", `\dfrac`, `\frac`, `\tfrac`, `\frac`, `\%`, "", "%", "", `{,}`, ",").Replace(s)
	s = leftRightRE.ReplaceAllString(s, "")
	s = degreeRE.ReplaceAllString(s, "")
	s = strings.TrimSpace(s)
	s = strings.TrimSpace(strings.TrimSuffix(s, "."))
	if loc := textUnitRE.FindStringIndex(s); loc != nil && strings.TrimSpace(s[:loc[0]]) != "" {
		s = strings.TrimSpace(s[:loc[0]])
	}
	s = unwrapText(s)
	if m := unitWordRE.FindStringSubmatch(s); m != nil {
		s = strings.TrimSpace(m[1])
	}
	// "x = 5" -> "5"; "x \in [1, 2]" -> "[1, 2]".
	if i := strings.Index(s, "="); i > 0 && strings.Count(s, "=") == 1 && !strings.ContainsAny(s[i-1:i], "<>!") && equationLHSRE.MatchString(s[:i]) {
		s = s[i+1:]
	} else if i := strings.Index(s, `\in`); i > 0 && !strings.HasPrefix(s[i:], `\inf`) && equationLHSRE.MatchString(s[:i]) {
		s = s[i+len(`\in`):]
	}
	s = fracShortRE.ReplaceAllString(s, `\frac{$1}{$2}`)
	s = fracShort1RE.ReplaceAllString(s, `\frac{$1}{`)
	s = fracShort2RE.ReplaceAllString(s, `$1{$2}`)
	s = sqrtShortRE.ReplaceAllString(s, `\sqrt{$1}`)
	s = strings.Join(strings.Fields(s), "")
	s = singleBraceRE.ReplaceAllString(s, "$1$2")
	s = strings.TrimSuffix(s, ".")
	if m := simpleFracRE.FindStringSubmatch(s); m != nil {
		s = `\frac{` + m[1] + `}{` + m[2] + `}`
	}
	if m := choiceRE.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if strings.HasPrefix(s, ".") {
		s = "0" + s
	}
	if strings.HasPrefix(s, "-.") {
		s = "-0" + s[1:]
	}
	return s
}

// unwrapText replaces \text{X} and similar wrappers by X.
func unwrapText(s string) string {
	for {
		loc := textCmdRE.FindStringIndex(s)
		if loc == nil {
			return s
		}
		open := loc[1] - 1
		end := matchBrace(s, open)
		if end < 0 {
			return s[:loc[0]] + s[open+1:]
		}
		s = s[:loc[0]] + s[open+1:end] + s[end+1:]
	}
}

// thousandsOK reports whether s has no commas or well-formed thousands commas.
func thousandsOK(s string) bool { return !strings.Contains(s, ",") || thousandsRE.MatchString(s) }

// equalNormalized compares two normalised answers (see MathEqual).
func equalNormalized(a, b string, depth int) bool {
	if a == b {
		return true
	}
	if eq, ok := integersEqual(strings.ReplaceAll(a, ",", ""), strings.ReplaceAll(b, ",", "")); ok && thousandsOK(a) && thousandsOK(b) {
		return eq
	}
	va, okA := evalNumber(a)
	vb, okB := evalNumber(b)
	if okA && okB {
		return closeEnough(va, vb)
	}
	if depth > 4 {
		return false
	}
	la, lb := splitList(a), splitList(b)
	if la.kind == notList || lb.kind == notList {
		return false
	}
	if la.unordered() && lb.unordered() {
		return sameMultiset(la.elems, lb.elems, depth)
	}
	if la.kind != lb.kind || la.open != lb.open || la.close != lb.close || len(la.elems) != len(lb.elems) {
		return false
	}
	for i := range la.elems {
		if !equalNormalized(la.elems[i], lb.elems[i], depth+1) {
			return false
		}
	}
	return true
}

func sameMultiset(a, b []string, depth int) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
next:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && equalNormalized(x, y, depth+1) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}

type listKind int

const (
	notList    listKind = iota
	bareList            // a,b,c (unordered)
	setList             // \{a,b\} (unordered)
	tupleList           // (a,b), [a,b), ... (ordered, brackets must agree)
	unionList           // A\cupB (ordered)
	matrixList          // \begin{pmatrix}a\\b\end{pmatrix} (ordered)
)

type list struct {
	kind        listKind
	open, close string
	elems       []string
}

func (l list) unordered() bool { return l.kind == bareList || l.kind == setList }

// splitList recognises a normalised answer as a list of elements.
func splitList(s string) list {
	if parts := splitTop(s, `\cup`); len(parts) > 1 {
		return list{kind: unionList, elems: parts}
	}
	for _, env := range []string{"pmatrix", "bmatrix"} {
		b, e := `\begin{`+env+`}`, `\end{`+env+`}`
		if strings.HasPrefix(s, b) && strings.HasSuffix(s, e) {
			inner := s[len(b) : len(s)-len(e)]
			var elems []string
			for _, row := range splitTop(inner, `\\`) {
				elems = append(elems, splitTop(row, "&")...)
			}
			return list{kind: matrixList, open: env, elems: elems}
		}
	}
	if strings.HasPrefix(s, `\{`) && strings.HasSuffix(s, `\}`) && enclosed(s) {
		return list{kind: setList, elems: splitTop(s[2:len(s)-2], ",")}
	}
	if len(s) >= 2 && strings.ContainsRune("([", rune(s[0])) && strings.ContainsRune(")]", rune(s[len(s)-1])) && enclosed(s) {
		if parts := splitTop(s[1:len(s)-1], ","); len(parts) > 1 {
			return list{kind: tupleList, open: s[:1], close: s[len(s)-1:], elems: parts}
		}
		return list{}
	}
	if thousandsRE.MatchString(s) {
		return list{}
	}
	if parts := splitTop(s, ","); len(parts) > 1 {
		return list{kind: bareList, elems: parts}
	}
	return list{}
}

// enclosed reports whether the opening bracket at the start of s is
// closed only by the last bracket of s: "(1,2)" yes, "(1)(2)" no.
func enclosed(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '}') {
			if s[i+1] == '{' {
				depth++
			} else {
				depth--
			}
			i++
		} else if strings.IndexByte("([{", c) >= 0 {
			depth++
		} else if strings.IndexByte(")]}", c) >= 0 {
			depth--
		} else {
			continue
		}
		if depth == 0 && i < len(s)-1 {
			return false
		}
	}
	return depth == 0
}

// splitTop splits s at top-level occurrences of sep (outside (), [], {}).
func splitTop(s, sep string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		if depth == 0 && strings.HasPrefix(s[i:], sep) {
			parts = append(parts, s[start:i])
			i += len(sep) - 1
			start = i + 1
			continue
		}
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '}') {
				if s[i+1] == '{' {
					depth++
				} else {
					depth--
				}
				i++
			}
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
	}
	return append(parts, s[start:])
}

// evalNumber evaluates a normalised answer that is a number or an
// arithmetic expression of numbers (see MathEqual); ok is false for
// anything with a variable or an unknown command.
func evalNumber(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	if thousandsRE.MatchString(s) {
		s = strings.ReplaceAll(s, ",", "")
	}
	if m := mixedRE.FindStringSubmatch(s); m != nil {
		w, _ := strconv.ParseFloat(m[2], 64)
		n, _ := strconv.ParseFloat(m[3], 64)
		d, _ := strconv.ParseFloat(m[4], 64)
		if d == 0 {
			return 0, false
		}
		v := w + n/d
		if m[1] == "-" {
			v = -v
		}
		return v, true
	}
	p := &evaluator{s: s}
	v, ok := p.expr()
	if !ok || p.i != len(p.s) || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// evaluator is a recursive-descent evaluator for the LaTeX arithmetic that
// final answers use. Grammar (no spaces; normalizeMath removed them):
//
//	expr   = term { ("+" | "-") term }
//	term   = unary { ("*" | "/" | \cdot | \times | \div) unary | atom }   (an atom after a term multiplies: 2\sqrt{3})
//	unary  = ("-" | "+") unary | power
//	power  = atom [ "^" (group | digit) ]
//	atom   = number | "(" expr ")" | group | \frac group group | \sqrt ["[" expr "]"] group | \pi
//	group  = "{" expr "}"
type evaluator struct {
	s string
	i int
}

func (p *evaluator) eat(tok string) bool {
	if strings.HasPrefix(p.s[p.i:], tok) {
		// A command must not run into more letters: \pi is not \pit.
		if tok[0] == '\\' && len(tok) > 1 && p.i+len(tok) < len(p.s) && isLetter(p.s[p.i+len(tok)]) && isLetter(tok[len(tok)-1]) {
			return false
		}
		p.i += len(tok)
		return true
	}
	return false
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *evaluator) expr() (float64, bool) {
	v, ok := p.term()
	if !ok {
		return 0, false
	}
	for {
		switch {
		case p.eat("+"):
			w, ok := p.term()
			if !ok {
				return 0, false
			}
			v += w
		case p.eat("-"):
			w, ok := p.term()
			if !ok {
				return 0, false
			}
			v -= w
		default:
			return v, true
		}
	}
}

func (p *evaluator) term() (float64, bool) {
	v, ok := p.unary()
	if !ok {
		return 0, false
	}
	for {
		switch {
		case p.eat("*"), p.eat(`\cdot`), p.eat(`\times`):
			w, ok := p.unary()
			if !ok {
				return 0, false
			}
			v *= w
		case p.eat("/"), p.eat(`\div`):
			w, ok := p.unary()
			if !ok || w == 0 {
				return 0, false
			}
			v /= w
		case p.startsAtom() && !p.startsNumber():
			w, ok := p.power()
			if !ok {
				return 0, false
			}
			v *= w
		default:
			return v, true
		}
	}
}

func (p *evaluator) unary() (float64, bool) {
	switch {
	case p.eat("-"):
		v, ok := p.unary()
		return -v, ok
	case p.eat("+"):
		return p.unary()
	}
	return p.power()
}

func (p *evaluator) power() (float64, bool) {
	v, ok := p.atom()
	if !ok {
		return 0, false
	}
	if p.eat("^") {
		var e float64
		if p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			e = float64(p.s[p.i] - '0') // x^23 is x^2 * 3 in LaTeX; one digit binds
			p.i++
		} else if e, ok = p.group(); !ok {
			return 0, false
		}
		if math.Abs(e) > 1000 {
			return 0, false
		}
		v = math.Pow(v, e)
	}
	return v, true
}

func (p *evaluator) startsNumber() bool {
	return p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.')
}

func (p *evaluator) startsAtom() bool {
	if p.startsNumber() {
		return true
	}
	r := p.s[p.i:]
	return strings.HasPrefix(r, "(") || strings.HasPrefix(r, "{") || strings.HasPrefix(r, `\frac`) ||
		strings.HasPrefix(r, `\sqrt`) || strings.HasPrefix(r, `\pi`)
}

func (p *evaluator) group() (float64, bool) {
	if !p.eat("{") {
		return 0, false
	}
	v, ok := p.expr()
	if !ok || !p.eat("}") {
		return 0, false
	}
	return v, true
}

func (p *evaluator) atom() (float64, bool) {
	switch {
	case p.startsNumber():
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j < len(p.s) && p.s[j] == '.' {
			j++
			for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
				j++
			}
		}
		v, err := strconv.ParseFloat(p.s[p.i:j], 64)
		if err != nil {
			return 0, false
		}
		p.i = j
		return v, true
	case p.eat("("):
		v, ok := p.expr()
		if !ok || !p.eat(")") {
			return 0, false
		}
		return v, true
	case p.i < len(p.s) && p.s[p.i] == '{':
		return p.group()
	case p.eat(`\frac`):
		n, ok := p.group()
		if !ok {
			return 0, false
		}
		d, ok := p.group()
		if !ok || d == 0 {
			return 0, false
		}
		return n / d, true
	case p.eat(`\sqrt`):
		root := 2.0
		if p.eat("[") {
			r, ok := p.expr()
			if !ok || !p.eat("]") || r == 0 {
				return 0, false
			}
			root = r
		}
		v, ok := p.group()
		if !ok || v < 0 {
			return 0, false
		}
		return math.Pow(v, 1/root), true
	case p.eat(`\pi`):
		return math.Pi, true
	}
	return 0, false
}
