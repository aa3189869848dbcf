package jobs

import (
	"context"
	"strings"
	"testing"
)

// testStage is a stage with one argument of each type.
type testStage struct{}

func (testStage) Spec() StageSpec {
	return StageSpec{
		Name: "probe",
		Doc:  "test stage",
		Args: []ArgSpec{
			{Name: "name", Type: TypeString, Required: true, Doc: "a name"},
			{Name: "mode", Type: TypeString, Default: "fast", Enum: []string{"fast", "slow"}, Doc: "speed"},
			{Name: "n", Type: TypeInt, Default: int64(8), Doc: "count"},
			{Name: "lr", Type: TypeFloat, Default: 1e-3, Doc: "learning rate"},
			{Name: "flag", Type: TypeBool, Default: false, Doc: "a flag"},
			{Name: "data", Type: TypeTable, Doc: "input table"},
			{Name: "query", Type: TypeQuery, Doc: "a query"},
		},
		Outputs: func(Args) []string { return []string{"probe"} },
		Check: func(a Args) (string, string) {
			if a.Has("data") && a.Has("query") {
				return "give data or query, not both", "drop one"
			}
			return "", ""
		},
	}
}

func (testStage) Run(context.Context, *StageCtx, Args) (Summary, error) { return Summary{}, nil }

func TestBindArgs(t *testing.T) {
	spec := testStage{}.Spec()
	at := Pos{File: "job.sql", Line: 3, Col: 14}
	call := Pos{File: "job.sql", Line: 3, Col: 1}
	tests := []struct {
		name    string
		raw     []RawArg
		wantErr []string // substrings; nil = success
		check   func(t *testing.T, a Args)
	}{
		{name: "defaults", raw: []RawArg{{Name: "name", Value: "x"}}, check: func(t *testing.T, a Args) {
			if a.String("mode") != "fast" || a.Int("n") != 8 || a.Float("lr") != 1e-3 || a.Bool("flag") || a.Has("data") {
				t.Errorf("defaults: %v", a.Map())
			}
			if a.Given("mode") || !a.Given("name") {
				t.Errorf("Given wrong")
			}
		}},
		{name: "all types", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "n", Value: int64(3)}, {Name: "lr", Value: int64(1)},
			{Name: "flag", Value: true}, {Name: "data", Value: Ident("batch")}, {Name: "mode", Value: "slow"}},
			check: func(t *testing.T, a Args) {
				if a.Int("n") != 3 || a.Float("lr") != 1 || !a.Bool("flag") || a.String("data") != "batch" || a.String("mode") != "slow" {
					t.Errorf("values: %v", a.Map())
				}
			}},
		{name: "case-insensitive name", raw: []RawArg{{Name: "NAME", Value: "x"}}},
		{name: "integral float for int", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "n", Value: 4.0}},
			check: func(t *testing.T, a Args) {
				if a.Int("n") != 4 {
					t.Errorf("n = %d", a.Int("n"))
				}
			}},
		{name: "null uses default", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "n", Value: nil}},
			check: func(t *testing.T, a Args) {
				if a.Int("n") != 8 {
					t.Errorf("n = %d", a.Int("n"))
				}
			}},
		{name: "unknown argument suggests", raw: []RawArg{{Name: "nmae", Value: "x", Pos: at}},
			wantErr: []string{"job.sql:3:14", `unknown argument "nmae" for stage probe`, `did you mean "name"?`, "valid arguments of probe: name, mode, n, lr, flag, data, query"}},
		{name: "unknown argument far from any", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "temperature", Value: 1.0, Pos: at}},
			wantErr: []string{`unknown argument "temperature"`, "valid arguments of probe"}},
		{name: "string given int", raw: []RawArg{{Name: "name", Value: int64(3), Pos: at}},
			wantErr: []string{"job.sql:3:14", "argument name of stage probe: want a string in single quotes, got int 3"}},
		{name: "int given string", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "n", Value: "8", Pos: at}},
			wantErr: []string{"argument n of stage probe: want an int, got string '8'"}},
		{name: "int given fraction", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "n", Value: 1.5}},
			wantErr: []string{"want an int, got float 1.5"}},
		{name: "float given bool", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "lr", Value: true}},
			wantErr: []string{"want a float, got bool true"}},
		{name: "bool given string", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "flag", Value: "yes"}},
			wantErr: []string{"want true or false, got string 'yes'"}},
		{name: "string given identifier", raw: []RawArg{{Name: "name", Value: Ident("x")}},
			wantErr: []string{"want a string in single quotes, got identifier x"}},
		{name: "enum", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "mode", Value: "slwo"}},
			wantErr: []string{`"slwo" is not one of 'fast', 'slow'`, "did you mean 'slow'?"}},
		{name: "missing required", raw: nil,
			wantErr: []string{"job.sql:3:1", "stage probe needs argument name (string)", "add name := <string>"}},
		{name: "given twice", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "name", Value: "y"}},
			wantErr: []string{`argument "name" given twice`}},
		{name: "check", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "data", Value: "t"}, {Name: "query", Value: "SELECT 1"}},
			wantErr: []string{"stage probe: give data or query, not both", "hint: drop one"}},
		{name: "empty query", raw: []RawArg{{Name: "name", Value: "x"}, {Name: "query", Value: "  "}},
			wantErr: []string{"want a query, got an empty string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := BindArgs(spec, tc.raw, call)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.check != nil {
					tc.check(t, a)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			if ExitCode(err) != 2 {
				t.Errorf("exit code %d, want 2", ExitCode(err))
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBuiltinSpecs(t *testing.T) {
	for _, name := range []string{"save", "exec", "reward", "log_metrics"} {
		if _, ok := DefaultRegistry.Lookup(name); !ok {
			t.Errorf("stage %s not registered", name)
		}
	}
	r := &Registry{}
	r.Register(testStage{})
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	r.Register(testStage{})
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"verfier", "verifier", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
