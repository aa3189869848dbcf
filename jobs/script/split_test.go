package script

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// splitCases are Split's table tests; TestSplitMatchesDuckDB also checks
// each against DuckDB.
var splitCases = []struct {
	name string
	src  string
	want []string
}{
	{"empty", "", nil},
	{"only space and comments", " \n-- a ; b\n/* c ; */ ;;\n", nil},
	{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
	{"two", "SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
	{"empty statements dropped", ";;SELECT 1;;\n;SELECT 2;;", []string{"SELECT 1", "SELECT 2"}},
	{"single quote with semicolon", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
	{"doubled single quote", "SELECT 'it''s; fine'; SELECT ''''", []string{"SELECT 'it''s; fine'", "SELECT ''''"}},
	{"backslash is literal in plain strings", `SELECT 'a\'; SELECT 2`, []string{`SELECT 'a\'`, "SELECT 2"}},
	{"E string backslash quote", `SELECT E'a\';b'; SELECT 2`, []string{`SELECT E'a\';b'`, "SELECT 2"}},
	{"e string lower case and doubled quote", `SELECT e'x''\\'; SELECT 2`, []string{`SELECT e'x''\\'`, "SELECT 2"}},
	{"identifier ending in e is not an E string", `SELECT some'a\'; SELECT 2`, []string{`SELECT some'a\'`, "SELECT 2"}},
	{"E string after a number", `SELECT 1e'a\';'; SELECT 2`, []string{`SELECT 1e'a\';'`, "SELECT 2"}},
	{"bit hex national strings", "SELECT b'0;1', X'A;B', N'n;'; SELECT 2", []string{"SELECT b'0;1', X'A;B', N'n;'", "SELECT 2"}},
	{"unicode escape string and identifier", `SELECT U&'a;b', u&"c;d"; SELECT 2`, []string{`SELECT U&'a;b', u&"c;d"`, "SELECT 2"}},
	{"double-quoted identifier", `SELECT "a;""b" FROM t; SELECT 2`, []string{`SELECT "a;""b" FROM t`, "SELECT 2"}},
	{"single quote inside identifier", `SELECT "it's;" FROM t; SELECT 2`, []string{`SELECT "it's;" FROM t`, "SELECT 2"}},
	{"double quote inside string", `SELECT '"; x'; SELECT 2`, []string{`SELECT '"; x'`, "SELECT 2"}},
	{"line comment", "SELECT 1 -- ; not here\n; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
	{"line comment ends at CR", "SELECT 1 -- x\r; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
	{"line comment at EOF", "SELECT 1 -- ;", []string{"SELECT 1"}},
	{"quote in line comment", "SELECT 1 -- it's\n; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
	{"block comment", "SELECT /* ; */ 1; SELECT 2", []string{"SELECT /* ; */ 1", "SELECT 2"}},
	{"nested block comment", "SELECT /* a /* b ; */ c ; */ 1; SELECT 2", []string{"SELECT /* a /* b ; */ c ; */ 1", "SELECT 2"}},
	{"block comment stars", "SELECT /** ; **/ 1; SELECT /**/2", []string{"SELECT /** ; **/ 1", "SELECT /**/2"}},
	{"quote in block comment", "SELECT /* it's */ 1; SELECT 2", []string{"SELECT /* it's */ 1", "SELECT 2"}},
	{"comment start after operator", "SELECT 2*/*;*/3; SELECT 1+--;\n4", []string{"SELECT 2*/*;*/3", "SELECT 1+--;\n4"}},
	{"dash dash in string", "SELECT '--;'; SELECT 2", []string{"SELECT '--;'", "SELECT 2"}},
	{"dollar quote", "SELECT $$a;'b$$; SELECT 2", []string{"SELECT $$a;'b$$", "SELECT 2"}},
	{"tagged dollar quote", "SELECT $fn$ $$ ; $other$ $fn$; SELECT 2", []string{"SELECT $fn$ $$ ; $other$ $fn$", "SELECT 2"}},
	{"dollar tag is case sensitive", "SELECT $a$ ; $A$ ; $a$; SELECT 2", []string{"SELECT $a$ ; $A$ ; $a$", "SELECT 2"}},
	{"dollar in identifier", "SELECT a$$b, c$ FROM t; SELECT 2", []string{"SELECT a$$b, c$ FROM t", "SELECT 2"}},
	{"parameter", "SELECT $1; SELECT $2", []string{"SELECT $1", "SELECT $2"}},
	{"dollar name without closing dollar", "SELECT $x; SELECT 2", []string{"SELECT $x", "SELECT 2"}},
	{"string continuation", "SELECT 'a'\n'b;'; SELECT 2", []string{"SELECT 'a'\n'b;'", "SELECT 2"}},
	{"trailing comment not in text", "SELECT 1 /* c */ -- d\n;", []string{"SELECT 1"}},
	{"leading comment not in text", "-- head\n/* x */ SELECT 1", []string{"SELECT 1"}},
	{"call", "CALL reward(verifier := 'gsm8k');\nCALL save(q := 'SELECT 1; SELECT 2', table := 'x')", []string{"CALL reward(verifier := 'gsm8k')", "CALL save(q := 'SELECT 1; SELECT 2', table := 'x')"}},
	{"unicode", "SELECT 'ü;ß' AS \"é;\"; SELECT '−'", []string{"SELECT 'ü;ß' AS \"é;\"", "SELECT '−'"}},
}

func TestSplit(t *testing.T) {
	for _, tc := range splitCases {
		t.Run(tc.name, func(t *testing.T) {
			sts, err := Split(tc.src)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			checkInvariants(t, tc.src, sts)
			if got := texts(sts); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("Split(%q)\n got %q\nwant %q", tc.src, got, tc.want)
			}
		})
	}
}

// TestSplitMatchesDuckDB runs every Split table case and fuzz seed through
// DuckDB's parser too, so the expectations above are DuckDB's.
func TestSplitMatchesDuckDB(t *testing.T) {
	o := duckDB(t)
	srcs := append([]string(nil), fuzzSeeds...)
	for _, tc := range splitCases {
		srcs = append(srcs, tc.src)
	}
	for _, src := range srcs {
		n, ok, msg := o.count(src)
		sts, err := Split(src)
		switch {
		case !ok && err == nil:
			t.Logf("DuckDB rejects %q (%s); Split gives %d", src, firstLine(msg), len(sts))
		case !ok:
		case err != nil:
			t.Errorf("Split(%q): %v; DuckDB parses %d", src, err, n)
		case n != len(sts):
			t.Errorf("Split(%q) = %d statements, DuckDB %d", src, len(sts), n)
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func TestSplitPositions(t *testing.T) {
	src := "-- job\nSELECT 1;\n  /* c */ SELECT\n  2; -- x\n\tCALL f();ü; SELECT 'é'"
	sts, err := Split(src)
	if err != nil {
		t.Fatal(err)
	}
	type pos struct {
		Text              string
		Line, Col, Offset int
	}
	want := []pos{
		{"SELECT 1", 2, 1, 7},
		{"SELECT\n  2", 3, 11, 27},
		{"CALL f()", 5, 2, 45},
		{"ü", 5, 11, 54},
		{"SELECT 'é'", 5, 14, 58},
	}
	var got []pos
	for _, st := range sts {
		got = append(got, pos{st.Text, st.Line, st.Col, st.Offset})
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("positions\n got %+v\nwant %+v", got, want)
	}
	// Statement.Position maps offsets inside Text back to the file.
	if line, col := sts[1].Position(len("SELECT\n  ")); line != 4 || col != 3 {
		t.Errorf("Position in second line of statement = %d:%d, want 4:3", line, col)
	}
	if line, col := sts[4].Position(len("SELECT ")); line != 5 || col != 21 {
		t.Errorf("Position = %d:%d, want 5:21", line, col)
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"string", "SELECT 1;\nSELECT 'abc", 2, 8, "unterminated quoted string"},
		{"string with doubled quote at end", "SELECT 'ab''", 1, 8, "unterminated quoted string"},
		{"E string with escaped quote at end", `SELECT E'ab\'`, 1, 8, "unterminated quoted string"},
		{"E string backslash at EOF", `SELECT E'ab\`, 1, 8, "unterminated quoted string"},
		{"identifier", "SELECT \"abc", 1, 8, "unterminated quoted identifier"},
		{"block comment", "SELECT 1 /* abc", 1, 10, "unterminated /* comment"},
		{"nested block comment", "SELECT 1 /* a /* b */", 1, 10, "unterminated /* comment"},
		{"dollar quote", "SELECT 1;\n\n  SELECT $$abc", 3, 10, "unterminated dollar-quoted string $$"},
		{"tagged dollar quote", "SELECT $t$ abc $T$", 1, 8, "unterminated dollar-quoted string $t$"},
		{"bit string", "SELECT b'01", 1, 8, "unterminated bit string literal"},
		{"column counts code points", "SELECT 'üü', 'x", 1, 14, "unterminated quoted string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Split(tc.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Split(%q) error = %v, want *SyntaxError", tc.src, err)
			}
			if se.Line != tc.line || se.Col != tc.col || se.Msg != tc.msg {
				t.Fatalf("Split(%q) error = %d:%d %q, want %d:%d %q", tc.src, se.Line, se.Col, se.Msg, tc.line, tc.col, tc.msg)
			}
			if !strings.Contains(err.Error(), se.Msg) {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}
