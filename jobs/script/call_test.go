package script

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseCall(t *testing.T) {
	str := func(s string) Value { return Value{Kind: String, Str: s} }
	i64 := func(n int64) Value { return Value{Kind: Int, Int: n} }
	f64 := func(f float64) Value { return Value{Kind: Float, Float: f} }
	tests := []struct {
		name string
		text string
		want *Call // nil: not a call (ok=false)
	}{
		{"no args", "CALL log_metrics()", &Call{Name: "log_metrics"}},
		{"lower case call and trailing semicolon", "call save(table := 'x');", &Call{Name: "save", Args: []Arg{{Name: "table", Value: str("x")}}}},
		{"mixed case name lowered", "Call Reward(Verifier := 'gsm8k')", &Call{Name: "reward", Args: []Arg{{Name: "verifier", Value: str("gsm8k")}}}},
		{"quoted names keep case", `CALL "Stage"("Arg" := 1)`, &Call{Name: "Stage", Args: []Arg{{Name: "Arg", Value: i64(1)}}}},
		{"arrow assignment", "CALL f(a => 1, b=>2)", &Call{Name: "f", Args: []Arg{{Name: "a", Value: i64(1)}, {Name: "b", Value: i64(2)}}}},
		{"string escapes", `CALL f(a := 'it''s', b := E'x\ty\'', c := $$q;'$$, d := $t$a$$b$t$, e := N'n')`, &Call{Name: "f", Args: []Arg{
			{Name: "a", Value: str("it's")}, {Name: "b", Value: str("x\ty'")}, {Name: "c", Value: str("q;'")}, {Name: "d", Value: str("a$$b")}, {Name: "e", Value: str("n")}}}},
		{"E string octal hex unicode", `CALL f(a := E'\101\x42\u00e9\U0001F600\q')`, &Call{Name: "f", Args: []Arg{{Name: "a", Value: str("ABé😀q")}}}},
		{"integers", "CALL f(a := 0, b := -7, c := +3, d := 1_000, e := - 5, f := 9223372036854775807, g := -9223372036854775808)", &Call{Name: "f", Args: []Arg{
			{Name: "a", Value: i64(0)}, {Name: "b", Value: i64(-7)}, {Name: "c", Value: i64(3)}, {Name: "d", Value: i64(1000)}, {Name: "e", Value: i64(-5)},
			{Name: "f", Value: i64(math.MaxInt64)}, {Name: "g", Value: i64(math.MinInt64)}}}},
		{"floats", "CALL f(a := 1.5, b := -0.25, c := 1e-3, d := -2.5E+2, e := .5, f := 2., g := 1_0.5)", &Call{Name: "f", Args: []Arg{
			{Name: "a", Value: f64(1.5)}, {Name: "b", Value: f64(-0.25)}, {Name: "c", Value: f64(1e-3)}, {Name: "d", Value: f64(-250)},
			{Name: "e", Value: f64(0.5)}, {Name: "f", Value: f64(2)}, {Name: "g", Value: f64(10.5)}}}},
		{"bools and null", "CALL f(a := true, b := FALSE, c := Null)", &Call{Name: "f", Args: []Arg{
			{Name: "a", Value: Value{Kind: Bool, Bool: true}}, {Name: "b", Value: Value{Kind: Bool}}, {Name: "c", Value: Value{Kind: Null}}}}},
		{"identifiers", `CALL f(a := batch, b := "My Table")`, &Call{Name: "f", Args: []Arg{
			{Name: "a", Value: Value{Kind: Ident, Str: "batch"}}, {Name: "b", Value: Value{Kind: Ident, Str: "My Table"}}}}},
		{"comments and newlines", "CALL /* c */ f( -- x\n a := 1 /* y */,\n b := 'z' ) ; -- done\n", &Call{Name: "f", Args: []Arg{{Name: "a", Value: i64(1)}, {Name: "b", Value: str("z")}}}},
		{"keyword-named argument", "CALL save(table := 't', select := 's')", &Call{Name: "save", Args: []Arg{{Name: "table", Value: str("t")}, {Name: "select", Value: str("s")}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := Statement{Text: tc.text, Line: 1, Col: 1}
			got, ok, err := ParseCall(st)
			if err != nil || !ok {
				t.Fatalf("ParseCall(%q) = %+v, %v, %v; want ok", tc.text, got, ok, err)
			}
			// Positions are tested separately.
			got.Line, got.Col = 0, 0
			for i := range got.Args {
				got.Args[i].Line, got.Args[i].Col = 0, 0
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseCall(%q)\n got %+v\nwant %+v", tc.text, got, tc.want)
			}
		})
	}
}

// Arguments that are not literals are expressions, kept as written for
// DuckDB to evaluate when the call runs.
func TestParseCallExpressions(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"CALL f(a := 1 + 2)", "1 + 2"},
		{"CALL f(a := getvariable('step'))", "getvariable('step')"},
		{"CALL f(a := '1'::INT)", "'1'::INT"},
		{"CALL f(a := b'01')", "b'01'"},
		{"CALL f(a := INTERVAL 1 DAY)", "INTERVAL 1 DAY"},
		{"CALL f(a := [1, 2])", "[1, 2]"},
		{"CALL f(a := 'x'\n'y')", "'x'\n'y'"},
		{"CALL f(a := (SELECT count(*) FROM t WHERE x IN (1, 2)), b := 3)", "(SELECT count(*) FROM t WHERE x IN (1, 2))"},
		{"CALL f(a := 2e-3 * getvariable('k') /* c */)", "2e-3 * getvariable('k')"},
	} {
		call, ok, err := ParseCall(Statement{Text: tc.text, Line: 1, Col: 1})
		if !ok || err != nil {
			t.Fatalf("ParseCall(%q) = %v, %v, want ok", tc.text, ok, err)
		}
		if v := call.Args[0].Value; v.Kind != Expr || v.Str != tc.want {
			t.Errorf("ParseCall(%q) arg a = %v %q, want expression %q", tc.text, v.Kind, v.Str, tc.want)
		}
	}
}

func TestParseCallNotOK(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantName string // "" if call must be nil
		wantErr  string
	}{
		{"select", "SELECT 1", "", ""},
		{"call as identifier prefix", "CALLS f()", "", ""},
		{"no parentheses", "CALL f", "", ""},
		{"qualified name", "CALL main.f(a := 1)", "", ""},
		{"call in string", "SELECT 'CALL f(a := 1)'", "", ""},
		{"positional", "CALL pragma_table_info('t')", "pragma_table_info", ""},
		{"positional then named", "CALL read_csv('x', header := true)", "read_csv", ""},
		{"spaced assignment", "CALL f(a : = 1)", "f", ""},
		{"equals", "CALL f(a = 1)", "f", ""},
		{"trailing comma", "CALL f(a := 1,)", "f", ""},
		{"missing close", "CALL f(a := 1", "", "1:7: unclosed parenthesis: the ( of CALL f is never closed"},
		{"unclosed call", "CALL save(", "", "1:10: unclosed parenthesis: the ( of CALL save is never closed"},
		{"unclosed inner", "CALL save(query := 'x',\n  output := lower('T')", "", "1:10: unclosed parenthesis"},
		{"unclosed nested", "CALL f(a := (1 + 2)", "", "1:7: unclosed parenthesis"},
		{"extra close", "CALL f(a := 1))", "f", ""},
		{"trailing tokens", "CALL f(a := 1) x", "f", ""},
		{"two statements", "CALL f(a := 1); SELECT 1", "f", ""},
		{"double sign", "CALL f(a := --1\n)", "f", ""},
		{"integer overflow", "CALL f(a := 9223372036854775808)", "f", "1:13: integer 9223372036854775808 does not fit in 64 bits"},
		{"duplicate argument", "CALL f(a := 1,\n  A := 2)", "f", "2:3: CALL f: argument \"a\" given twice"},
		{"unterminated string", "CALL f(a := 'x)", "", "1:13: unterminated quoted string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call, ok, err := ParseCall(Statement{Text: tc.text, Line: 1, Col: 1})
			if ok {
				t.Fatalf("ParseCall(%q) ok, want not ok", tc.text)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("ParseCall(%q) err = %v, want %q", tc.text, err, tc.wantErr)
			}
			switch {
			case tc.wantName == "" && call != nil:
				t.Fatalf("ParseCall(%q) call = %+v, want nil", tc.text, call)
			case tc.wantName != "" && (call == nil || call.Name != tc.wantName || call.Args != nil):
				t.Fatalf("ParseCall(%q) call = %+v, want name %q and no args", tc.text, call, tc.wantName)
			}
		})
	}
}

// A parenthesis inside a string or a comment does not count as unclosed.
func TestParseCallParenInString(t *testing.T) {
	for _, text := range []string{"CALL f(a := '(')", "CALL f(a := 1 /* ( */)", "CALL f(a := $$($$)"} {
		if _, ok, err := ParseCall(Statement{Text: text, Line: 1, Col: 1}); !ok || err != nil {
			t.Errorf("ParseCall(%q) = %v, %v; want ok", text, ok, err)
		}
	}
}

func TestParseCallPositions(t *testing.T) {
	src := "SELECT 1;\n-- rollout\n  CALL rollout(prompts := 'batch',\n\tn := 8, temperature := 1.0);\n"
	sts, err := Split(src)
	if err != nil {
		t.Fatal(err)
	}
	call, ok, err := ParseCall(sts[1])
	if err != nil || !ok {
		t.Fatalf("ParseCall: %v %v", ok, err)
	}
	type pos struct {
		Name      string
		Line, Col int
	}
	got := []pos{{call.Name, call.Line, call.Col}}
	for _, a := range call.Args {
		got = append(got, pos{a.Name, a.Line, a.Col})
	}
	want := []pos{{"rollout", 3, 3}, {"prompts", 3, 16}, {"n", 4, 2}, {"temperature", 4, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("positions\n got %+v\nwant %+v", got, want)
	}
}

func TestValueString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
		any  any
	}{
		{Value{Kind: String, Str: "it's"}, "'it''s'", "it's"},
		{Value{Kind: Int, Int: -3}, "-3", int64(-3)},
		{Value{Kind: Float, Float: 0.001}, "0.001", 0.001},
		{Value{Kind: Bool, Bool: true}, "true", true},
		{Value{Kind: Null}, "NULL", nil},
		{Value{Kind: Ident, Str: "batch"}, "batch", "batch"},
	}
	for _, tc := range tests {
		t.Run(tc.v.Kind.String(), func(t *testing.T) {
			if got := tc.v.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := tc.v.Any(); got != tc.any {
				t.Errorf("Any() = %#v, want %#v", got, tc.any)
			}
		})
	}
}
