package env

import (
	"context"
	"strings"
	"testing"

	rsql "github.com/rljob/rljob/sql"
)

// TestCalculate: exact values, the documented formatting and errors.
func TestCalculate(t *testing.T) {
	for expr, want := range map[string]string{
		"12*34": "408", "1234 * 5678": "7006652", "98765+43210": "141975", "7/2": "3.5", "1/3": "0.3333333333",
		"2/3": "0.6666666667", "-5 - -3": "-2", "2**10": "1024", "2^3^2": "512", "(1+2)*3": "9", "17 % 5": "2",
		"1.5*4": "6", "6 × 7 ÷ 2": "21", "-(2+3)": "-5", "10/4*2": "5", "0.1+0.2": "0.3",
	} {
		got, err := Calculate(expr)
		if err != nil || got != want {
			t.Errorf("Calculate(%q) = %q, %v; want %q", expr, got, err, want)
		}
	}
	for expr, want := range map[string]string{
		"1/0": "division by zero", "2**100000": "exponents", "(1+2": "missing )", "1+": "ends early", "abc": "unexpected",
		"": "empty", "1.2.3": "bad number", "5 % 1.5": "integers", "2**64**64": "exponents", "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))": "nested",
		"9**64**1*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64*9**64": "bits",
	} {
		if _, err := Calculate(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Calculate(%q): err %v, want %q", expr, err, want)
		}
	}
}

// TestCalculatorStep: a turn that ends at a stop with a call gets its
// result; a bad expression gets an error observation; a turn without a
// call, or that ended at EOS, ends the episode.
func TestCalculatorStep(t *testing.T) {
	e, err := Open("calculator", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, tc := range []struct {
		text, finish string
		want         Observation
	}{
		{"I compute <call>12*34</call>", FinishStop, Observation{Text: "<result>408</result>"}},
		{"<call>1</call> then <call>2+2</call>", FinishStop, Observation{Text: "<result>4</result>"}},
		{"<call>1/0</call>", FinishStop, Observation{Text: "<result>error: division by zero</result>"}},
		{"the answer is 408", FinishEOS, Observation{Done: true}},
		{"<call>1+1</call>", FinishEOS, Observation{Done: true}},
		{"<call>1+1", FinishLength, Observation{Done: true}},
	} {
		got, err := e.Step(context.Background(), &Episode{Text: tc.text, Finish: tc.finish})
		if err != nil || got.Text != tc.want.Text || got.Done != tc.want.Done || got.Reward != nil {
			t.Errorf("%q (%s): %+v, %v; want %+v", tc.text, tc.finish, got, err, tc.want)
		}
	}
	if _, err := Open("calculator:x", Config{}); err == nil {
		t.Error("calculator:x opened")
	}
	if _, err := Open("nope", Config{}); err == nil || !strings.Contains(err.Error(), "calculator") {
		t.Errorf("unknown env: %v, want the list of known ones", err)
	}
}

// TestSQLEnv: a macro returning VARCHAR (NULL = done) or a STRUCT (any of
// observation, reward, done; a DECIMAL reward), the transcript it sees,
// and the errors of a missing macro or a wrong result type.
func TestSQLEnv(t *testing.T) {
	ctx := context.Background()
	eng, err := rsql.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, m := range []string{
		`CREATE MACRO st(prompt_id, turn, text, finish, transcript) AS {'observation': prompt_id || ':' || text || '|' || transcript, 'reward': turn * 1.5, 'done': finish = 'eos'}`,
		`CREATE MACRO vc(prompt_id, turn, text, finish, transcript) AS CASE WHEN turn < 1 THEN upper(text) END`,
		`CREATE MACRO bad(prompt_id, turn, text, finish, transcript) AS 42`,
	} {
		if err := eng.Exec(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ep := &Episode{PromptID: "p", Prompt: "Q:", Turn: 1, Text: "b", Finish: FinishStop, History: []Exchange{{"a", "!"}}}
	st, _ := Open("sql:st", Config{Engine: eng})
	o, err := st.Step(ctx, ep)
	if err != nil || o.Text != "p:b|Q:a!b" || o.Reward == nil || *o.Reward != 1.5 || o.Done {
		t.Errorf("struct macro: %+v, %v", o, err)
	}
	ep.Finish = FinishEOS
	if o, err := st.Step(ctx, ep); err != nil || !o.Done {
		t.Errorf("struct macro, done: %+v, %v", o, err)
	}
	vc, _ := Open("sql:vc", Config{Engine: eng})
	if o, err := vc.Step(ctx, &Episode{Turn: 0, Text: "ab"}); err != nil || o.Text != "AB" || o.Done {
		t.Errorf("varchar macro: %+v, %v", o, err)
	}
	if o, err := vc.Step(ctx, &Episode{Turn: 1, Text: "ab"}); err != nil || !o.Done {
		t.Errorf("varchar macro, NULL: %+v, %v", o, err)
	}
	for name, want := range map[string]string{"sql:bad": "want VARCHAR or STRUCT", "sql:missing": "CREATE MACRO missing"} {
		e, err := Open(name, Config{Engine: eng})
		if err == nil {
			_, err = e.Step(ctx, ep)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", name, err, want)
		}
	}
	if _, err := Open("sql:drop table x", Config{Engine: eng}); err == nil {
		t.Error("sql:drop table x opened")
	}
}
