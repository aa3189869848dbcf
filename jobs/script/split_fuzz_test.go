package script

import (
	"strings"
	"testing"
)

// fuzzSeeds are inputs that exercise every quoting rule; crashers and
// mismatches the fuzzer found are kept in testdata/fuzz/FuzzSplit.
var fuzzSeeds = []string{
	"",
	"SELECT 1",
	"SELECT 1; SELECT 2;",
	"SELECT 'a;b'; SELECT 'it''s;'",
	"SELECT E'a\\';b'; SELECT 1",
	"SELECT 'a\\'; SELECT 1",
	"SELECT \"a;\"\"b\" FROM t; SELECT 2",
	"SELECT 1 -- c; SELECT 2\n; SELECT 3",
	"SELECT /* ; /* nested ; */ still ; */ 1; SELECT 2",
	"SELECT $$a;b$$; SELECT $t$ $$ ; $t$; SELECT $1",
	"SELECT a$$b FROM t; SELECT 2",
	"SELECT x'ab;', b'01;', n'x;'",
	"SELECT 1e'x'; SELECT 1..2",
	";;; -- only comments\n/* and this */ ;",
	"CALL reward(verifier := 'gsm8k', n := 8, lr := 1e-3);\nSELECT 1",
	"SELECT 'a'\n'b'; SELECT 1",
	"SELECT 1 /* unterminated",
	"SELECT 'unterminated",
	"SELECT $q$ unterminated $Q$",
	"SELECT é'x;'; SELECT 2",
	"SELECT $a$x;$b$y$a$; SELECT 3",
	"SELECT 1::INT; SET VARIABLE x = 3; SELECT getvariable('x')",
	"SELECT 1 --\r\nSELECT 2",
	"SELECT */*;*/1",
	"SELECT ''''; SELECT ';'",
}

// FuzzSplit checks Split against DuckDB's parser: for every input DuckDB
// can parse, Split must succeed with the same number of statements, and
// each statement's Text alone must parse as exactly one statement. Inputs
// DuckDB rejects only need Split's structural invariants (and Split may
// fail only where DuckDB fails). Run with
//
//	go test -tags duckdb_arrow -run '^$' -fuzz FuzzSplit -fuzztime 60s ./jobs/script
func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	o := duckDB(f)
	f.Fuzz(func(t *testing.T, src string) {
		checkAgainstDuckDB(t, o, src)
		// Random bytes seldom make SQL that DuckDB parses; the same bytes
		// also drive a generator of valid statements full of quoting.
		checkAgainstDuckDB(t, o, generateSQL(src))
	})
}

func checkAgainstDuckDB(t *testing.T, o *duckOracle, src string) {
	t.Helper()
	sts, err := Split(src)
	if err == nil {
		checkInvariants(t, src, sts)
	}
	if !oracleUsable(src) {
		return
	}
	n, ok, _ := o.count(src)
	if !ok {
		return
	}
	if err != nil {
		t.Fatalf("Split(%q) failed (%v) but DuckDB parses %d statements", src, err, n)
	}
	// Each statement alone must be exactly one statement to DuckDB, and
	// together they must be all of DuckDB's statements. One DuckDB (v1.5)
	// quirk: a statement made only of identifiers spelt in non-ASCII
	// letters and vertical tabs ("é", "中文 é", "\v") parses as no
	// statement at all, without an error; such a statement may count 0.
	total := 0
	for _, st := range sts {
		m, ok, msg := o.count(st.Text)
		if !ok || m > 1 || m == 0 && !duckIgnores(st.Text) {
			t.Fatalf("Split(%q): statement %d %q alone: DuckDB counts %d (ok=%v %s)", src, st.Index, st.Text, m, ok, firstLine(msg))
		}
		total += m
	}
	if total != n {
		t.Fatalf("Split(%q) = %d statements %q (DuckDB counts %d of them), DuckDB counts %d in all", src, len(sts), texts(sts), total, n)
	}
}

// Fragments for generateSQL: every item is a valid SELECT-list expression
// and every separator ends a statement, so the output parses.
var (
	genItems = []string{
		"1", "'a;b'", "'it''s;'", `E'x\';y'`, `e'\\'`, `'\'`, "$$a;'b$$", "$t$ $$ ; $t$", "$a$x$b$;$a$",
		`"c;""d"`, "x'0A'", "b'01'", "N'n;'", "1 /* ; /* n */ ; */", "2 -- ;\n", "a$$b", "$1", "1.5e-3", "1_000",
		"'é;ü'", `"中;文"`, "[1, 2]", "{'k': ';'}", "'a'\n';b'", "/**/3", "4/**/", "'--;'", "'/*;'", `"/*"`,
		"$_$;$_$", "$é$;$é$", "1::VARCHAR", "- -1", "3 */*;*/ 4", "'\n;\n'", "$$$$",
	}
	genSeps = []string{";", ";\n", " ;;", "; -- c;\n", "/* ; */;", ";\r\n", "\n;\t", "-- x\n;", ";/* a /* b */ ; */"}
	genLead = []string{"", "-- lead;\n", "/* ; */ ", "\n\n", "\t"}
)

// generateSQL maps bytes to a script of SELECT statements built from
// genItems, separated by genSeps: each byte picks the next fragment.
func generateSQL(data string) string {
	var b strings.Builder
	start := true
	for i := 0; i < len(data); i++ {
		c := int(data[i])
		if start {
			b.WriteString(genLead[c%len(genLead)])
			b.WriteString("SELECT ")
			b.WriteString(genItems[(c/8)%len(genItems)])
			start = false
			continue
		}
		if c%5 == 0 {
			b.WriteString(genSeps[(c/5)%len(genSeps)])
			start = true
			continue
		}
		b.WriteString(", ")
		b.WriteString(genItems[c%len(genItems)])
	}
	return b.String()
}

func duckIgnores(text string) bool {
	toks, err := significantTokens(text)
	if err != nil {
		return false
	}
	for _, tok := range toks {
		s := text[tok.start:tok.end]
		switch {
		case tok.kind == tokOther && s == "\v":
		case tok.kind == tokIdent && strings.IndexFunc(s, func(r rune) bool { return r < 0x80 }) < 0:
		default:
			return false
		}
	}
	return true
}

func texts(sts []Statement) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = st.Text
	}
	return out
}

// checkInvariants checks what holds for every successful Split.
func checkInvariants(t *testing.T, src string, sts []Statement) {
	t.Helper()
	lines := lineIndex(src)
	prevEnd := 0
	for i, st := range sts {
		if st.Index != i {
			t.Fatalf("Split(%q)[%d].Index = %d", src, i, st.Index)
		}
		if st.Text == "" || st.Offset < prevEnd || st.Offset+len(st.Text) > len(src) || src[st.Offset:st.Offset+len(st.Text)] != st.Text {
			t.Fatalf("Split(%q)[%d] = %+v: Text is not src[Offset:] or overlaps", src, i, st)
		}
		if strings.TrimLeft(st.Text, " \t\n\r\f") != st.Text || strings.TrimRight(st.Text, " \t\n\r\f") != st.Text {
			t.Fatalf("Split(%q)[%d].Text = %q has surrounding space", src, i, st.Text)
		}
		if line, col := position(src, lines, st.Offset); line != st.Line || col != st.Col {
			t.Fatalf("Split(%q)[%d] at %d:%d, want %d:%d", src, i, st.Line, st.Col, line, col)
		}
		prevEnd = st.Offset + len(st.Text)
	}
}
