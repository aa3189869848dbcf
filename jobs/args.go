package jobs

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Args holds the checked arguments of one stage call: every declared
// argument has a value (given or default; nil when it has neither). The
// accessors panic on a name the stage did not declare, a program bug.
type Args struct {
	stage string
	vals  map[string]any
	given map[string]bool
	pos   map[string]Pos
	call  Pos
	// fromExpr marks arguments whose value an expression computed.
	fromExpr map[string]bool
}

func (a Args) get(name string) any {
	v, ok := a.vals[name]
	if !ok {
		panic(fmt.Sprintf("jobs: stage %q has no argument %q", a.stage, name))
	}
	return v
}

// Has reports whether the argument has a value (given in the call, or a
// non-nil default).
func (a Args) Has(name string) bool { return a.get(name) != nil }

// Given reports whether the call set the argument explicitly.
func (a Args) Given(name string) bool { a.get(name); return a.given[name] }

// String returns a string, table or query argument ("" when unset).
func (a Args) String(name string) string {
	v, _ := a.get(name).(string)
	return v
}

// Int returns an int argument (0 when unset).
func (a Args) Int(name string) int64 {
	v, _ := a.get(name).(int64)
	return v
}

// Float returns a float argument (0 when unset).
func (a Args) Float(name string) float64 {
	v, _ := a.get(name).(float64)
	return v
}

// Bool returns a bool argument (false when unset).
func (a Args) Bool(name string) bool {
	v, _ := a.get(name).(bool)
	return v
}

// Pos is where the argument was written, or the call's position for a
// default.
func (a Args) Pos(name string) Pos {
	if p, ok := a.pos[name]; ok {
		return p
	}
	return a.call
}

// CallPos is where the CALL statement starts.
func (a Args) CallPos() Pos { return a.call }

// Map returns the arguments with values, for manifests and logs.
func (a Args) Map() map[string]any {
	m := map[string]any{}
	for k, v := range a.vals {
		if v != nil {
			m[k] = v
		}
	}
	return m
}

// HasExpr reports whether an argument is an expression not evaluated yet.
func (a Args) HasExpr() bool {
	for _, v := range a.vals {
		if _, ok := v.(Expr); ok {
			return true
		}
	}
	return false
}

// Exprs lists the arguments that are expressions evaluated at run time.
func (a Args) Exprs() []string {
	var out []string
	for k, v := range a.vals {
		if _, ok := v.(Expr); ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Ident is a bare identifier written as an argument value
// (`rollouts := my_table`); only table arguments accept one.
type Ident string

// RawArg is one argument as written in a call: Value is nil (NULL), string,
// Ident, int64, float64 or bool.
type RawArg struct {
	Name  string
	Value any
	Pos   Pos
}

// BindArgs checks raw arguments against spec: every name declared, each
// value of the declared type (an int where a float is declared is widened),
// required arguments present, enum values allowed, then spec.Check. Errors
// are UsageErrors at the argument's position with a fix hint.
func BindArgs(spec StageSpec, raw []RawArg, call Pos) (Args, error) {
	a := Args{stage: spec.Name, vals: map[string]any{}, given: map[string]bool{}, pos: map[string]Pos{}, call: call}
	decl := map[string]ArgSpec{}
	for _, s := range spec.Args {
		decl[s.Name] = s
	}
	for _, r := range raw {
		name := strings.ToLower(r.Name)
		s, ok := decl[name]
		if !ok {
			return Args{}, &UsageError{
				Pos:  pick(r.Pos, call),
				Msg:  fmt.Sprintf("unknown argument %q for stage %s", r.Name, spec.Name),
				Hint: argHint(spec, r.Name),
			}
		}
		if a.given[name] {
			return Args{}, &UsageError{Pos: pick(r.Pos, call), Msg: fmt.Sprintf("argument %q given twice in call to %s", r.Name, spec.Name)}
		}
		v, err := convertArg(s, r.Value)
		if err != "" {
			return Args{}, &UsageError{
				Pos:  pick(r.Pos, call),
				Msg:  fmt.Sprintf("argument %s of stage %s: %s", s.Name, spec.Name, err),
				Hint: fmt.Sprintf("%s is %s: %s", s.Name, typeDoc(s), s.Doc),
			}
		}
		a.given[name] = true
		a.pos[name] = pick(r.Pos, call)
		a.vals[name] = v
	}
	for _, s := range spec.Args {
		if _, ok := a.vals[s.Name]; ok && a.vals[s.Name] != nil {
			continue
		}
		if s.Required {
			return Args{}, &UsageError{
				Pos:  call,
				Msg:  fmt.Sprintf("stage %s needs argument %s (%s)", spec.Name, s.Name, s.Type),
				Hint: fmt.Sprintf("add %s := <%s> — %s", s.Name, s.Type, s.Doc),
			}
		}
		a.vals[s.Name] = s.Default
	}
	if spec.Check != nil && !a.HasExpr() {
		if msg, hint := spec.Check(a); msg != "" {
			return Args{}, &UsageError{Pos: call, Msg: fmt.Sprintf("stage %s: %s", spec.Name, msg), Hint: hint}
		}
	}
	return a, nil
}

func pick(p, def Pos) Pos {
	if p.Line == 0 {
		return def
	}
	return p
}

// convertArg checks v against s and returns the Go value, or a message.
func convertArg(s ArgSpec, v any) (any, string) {
	if e, ok := v.(Expr); ok {
		return e, "" // checked once evaluated (EvalArgs)
	}
	if v == nil {
		if s.Required {
			return nil, "is required and cannot be NULL"
		}
		return s.Default, ""
	}
	got := describe(v)
	switch s.Type {
	case TypeString, TypeQuery:
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Sprintf("want a %s in single quotes, got %s", s.Type, got)
		}
		if s.Type == TypeQuery && strings.TrimSpace(str) == "" {
			return nil, "want a query, got an empty string"
		}
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			msg := fmt.Sprintf("%q is not one of %s", str, strings.Join(quoteAll(s.Enum), ", "))
			if m := closest(str, s.Enum); m != "" {
				msg += fmt.Sprintf(" (did you mean '%s'?)", m)
			}
			return nil, msg
		}
		return str, ""
	case TypeTable:
		switch t := v.(type) {
		case string:
			if strings.TrimSpace(t) == "" {
				return nil, "want a table name, got an empty string"
			}
			return t, ""
		case Ident:
			return string(t), ""
		}
		return nil, fmt.Sprintf("want a table name, got %s", got)
	case TypeInt:
		switch t := v.(type) {
		case int64:
			return t, ""
		case float64:
			if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
				return int64(t), ""
			}
		}
		return nil, fmt.Sprintf("want an int, got %s", got)
	case TypeFloat:
		switch t := v.(type) {
		case int64:
			return float64(t), ""
		case float64:
			return t, ""
		}
		return nil, fmt.Sprintf("want a float, got %s", got)
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, ""
		}
		return nil, fmt.Sprintf("want true or false, got %s", got)
	}
	return nil, fmt.Sprintf("unknown type %s", s.Type)
}

func describe(v any) string {
	switch t := v.(type) {
	case string:
		return fmt.Sprintf("string '%s'", t)
	case Ident:
		return fmt.Sprintf("identifier %s", string(t))
	case int64:
		return fmt.Sprintf("int %d", t)
	case float64:
		return fmt.Sprintf("float %g", t)
	case bool:
		return fmt.Sprintf("bool %t", t)
	}
	return fmt.Sprintf("%T %v", v, v)
}

func typeDoc(s ArgSpec) string {
	switch s.Type {
	case TypeTable:
		return "a table name ('t' or t) or a query ('SELECT …')"
	case TypeQuery:
		return "a query in single quotes"
	case TypeString:
		if len(s.Enum) > 0 {
			return "one of " + strings.Join(quoteAll(s.Enum), ", ")
		}
		return "a string in single quotes"
	}
	return "a " + string(s.Type)
}

// argHint suggests the closest declared name and lists them all.
func argHint(spec StageSpec, name string) string {
	var names []string
	for _, s := range spec.Args {
		names = append(names, s.Name)
	}
	h := ""
	if m := closest(strings.ToLower(name), names); m != "" {
		h = fmt.Sprintf("did you mean %q? ", m)
	}
	if len(names) == 0 {
		return h + spec.Name + " takes no arguments"
	}
	return h + "valid arguments of " + spec.Name + ": " + strings.Join(names, ", ")
}

// closest returns the candidate nearest to s by edit distance, if it is
// near enough to be a plausible typo (distance <= max(2, len/3)).
func closest(s string, cands []string) string {
	best, bestD := "", 1<<30
	for _, c := range cands {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "'" + x + "'"
	}
	return out
}
