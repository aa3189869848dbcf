package sql

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The macro tests are data-driven: every testdata/<macro>.txt holds cases of
// input rows, a query and the expected rows, with the arithmetic worked out by
// hand in # comments. Format (one directive per line, # starts a comment):
//
//	case NAME                     starts a case (fresh engine and lake)
//	table NAME (COL TYPE, ...)    a temporary table; rows follow
//	lake NAME (COL TYPE, ...)     a lake table written as Parquet under
//	                              NAME/run=R/step=S/ (when it has run and step
//	                              columns), then Refresh; rows follow
//	a | 1 | NULL | [1, 2]         a row: cells split on '|', trimmed, NULL is
//	                              NULL, anything else is CAST('cell' AS TYPE)
//	query                         SQL follows up to expect/error (may hold
//	                              several statements; the last one's rows count)
//	columns a, b, c               optional: the result's column names
//	expect                        expected rows follow, in order
//	error SUBSTRING               the query must fail with this in its message
//
// The variable testdata_lake holds the case's lake folder (for macros that
// take a path).
//
// Numbers match when |got - want| <= 1e-9 * max(1, |want|); other values by
// their text (true/false, strings, lists as [1, 2]).
const macroTol = 1e-9

type macroCase struct {
	name    string
	line    int
	inputs  []macroInput
	query   []string
	columns []string
	expect  [][]string
	errSub  string
	hasWant bool
}

type macroInput struct {
	lake bool
	name string
	cols []column
	rows [][]string
}

func TestMacroFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt files")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			cases := parseMacroFile(t, file)
			if len(cases) == 0 {
				t.Fatalf("%s: no cases", file)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { runMacroCase(t, file, c) })
			}
		})
	}
}

func parseMacroFile(t *testing.T, file string) []*macroCase {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cases []*macroCase
		cur   *macroCase
		mode  string // "input", "query", "expect"
	)
	fail := func(n int, format string, args ...any) {
		t.Helper()
		t.Fatalf("%s:%d: %s", file, n, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if word == "case" {
			cur = &macroCase{name: rest, line: n}
			cases = append(cases, cur)
			mode = ""
			continue
		}
		if cur == nil {
			fail(n, "%q before the first case", line)
		}
		switch word {
		case "table", "lake":
			in, err := parseInputHeader(word == "lake", rest)
			if err != nil {
				fail(n, "%v", err)
			}
			cur.inputs = append(cur.inputs, in)
			mode = "input"
			continue
		case "query":
			mode = "query"
			continue
		case "columns":
			for _, c := range strings.Split(rest, ",") {
				cur.columns = append(cur.columns, strings.TrimSpace(c))
			}
			continue
		case "expect":
			cur.hasWant = true
			mode = "expect"
			continue
		case "error":
			cur.errSub = rest
			mode = ""
			continue
		}
		switch mode {
		case "input":
			in := &cur.inputs[len(cur.inputs)-1]
			row := splitCells(line)
			if len(row) != len(in.cols) {
				fail(n, "%d cells, table %s has %d columns", len(row), in.name, len(in.cols))
			}
			in.rows = append(in.rows, row)
		case "query":
			cur.query = append(cur.query, line)
		case "expect":
			cur.expect = append(cur.expect, splitCells(line))
		default:
			fail(n, "unexpected line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if len(c.query) == 0 || c.hasWant == (c.errSub != "") {
			t.Fatalf("%s:%d: case %s needs a query and exactly one of expect / error", file, c.line, c.name)
		}
	}
	return cases
}

// parseInputHeader parses `NAME (COL TYPE, ...)`.
func parseInputHeader(lake bool, s string) (macroInput, error) {
	name, cols, ok := strings.Cut(s, "(")
	if !ok || !strings.HasSuffix(cols, ")") {
		return macroInput{}, fmt.Errorf("want NAME (COL TYPE, ...), got %q", s)
	}
	in := macroInput{lake: lake, name: strings.TrimSpace(name)}
	for _, c := range splitTopLevel(strings.TrimSuffix(cols, ")")) {
		cn, ct, ok := strings.Cut(strings.TrimSpace(c), " ")
		if !ok {
			return macroInput{}, fmt.Errorf("column %q: want NAME TYPE", c)
		}
		in.cols = append(in.cols, column{cn, strings.TrimSpace(ct)})
	}
	return in, nil
}

// splitTopLevel splits s on commas outside parentheses (STRUCT(a INT, b INT)).
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func splitCells(line string) []string {
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

func runMacroCase(t *testing.T, file string, c *macroCase) {
	ctx := context.Background()
	lake := t.TempDir()
	e := openEngine(t, lake)
	for _, in := range c.inputs {
		target := in.name
		if in.lake {
			target = "__rl_in_" + in.name
		}
		defs := make([]string, len(in.cols))
		for i, col := range in.cols {
			defs[i] = QuoteIdent(col.name) + " " + col.typ
		}
		if err := e.Exec(ctx, "CREATE TEMP TABLE "+QuoteIdent(target)+" ("+strings.Join(defs, ", ")+")"); err != nil {
			t.Fatal(err)
		}
		for _, row := range in.rows {
			vals := make([]string, len(row))
			for i, cell := range row {
				if cell == "NULL" {
					vals[i] = "NULL"
				} else {
					vals[i] = "CAST(" + QuoteString(cell) + " AS " + in.cols[i].typ + ")"
				}
			}
			if err := e.Exec(ctx, "INSERT INTO "+QuoteIdent(target)+" VALUES ("+strings.Join(vals, ", ")+")"); err != nil {
				t.Fatalf("%s:%d: insert into %s: %v", file, c.line, in.name, err)
			}
		}
		if !in.lake {
			continue
		}
		dir := filepath.Join(lake, in.name)
		opts := "FORMAT parquet"
		if hasColumn(in.cols, "run") && hasColumn(in.cols, "step") {
			opts += ", PARTITION_BY (run, step)"
		} else {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(dir, "data.parquet")
		}
		if err := e.Exec(ctx, "COPY "+QuoteIdent(target)+" TO "+QuoteString(dir)+" ("+opts+")"); err != nil {
			t.Fatal(err)
		}
		if err := e.Exec(ctx, "DROP TABLE "+QuoteIdent(target)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.SetVariable(ctx, "testdata_lake", filepath.ToSlash(lake)); err != nil {
		t.Fatal(err)
	}
	if errs := e.TableErrors(); len(errs) > 0 {
		t.Fatalf("TableErrors: %v", errs)
	}

	query := strings.Join(c.query, "\n")
	rows, err := e.Conn().QueryContext(ctx, query)
	var got [][]any
	var cols []string
	if err == nil {
		cols, err = rows.Columns()
		for err == nil && rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			err = rows.Scan(ptrs...)
			got = append(got, vals)
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
	}
	if c.errSub != "" {
		if err == nil || !strings.Contains(err.Error(), c.errSub) {
			t.Fatalf("%s:%d: error = %v, want one containing %q", file, c.line, err, c.errSub)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s:%d: %v\nquery:\n%s", file, c.line, err, query)
	}
	if c.columns != nil && strings.Join(cols, ", ") != strings.Join(c.columns, ", ") {
		t.Errorf("%s:%d: columns\n got %s\nwant %s", file, c.line, strings.Join(cols, ", "), strings.Join(c.columns, ", "))
	}
	if len(got) != len(c.expect) {
		t.Errorf("%s:%d: %d rows, want %d", file, c.line, len(got), len(c.expect))
	}
	for i := range min(len(got), len(c.expect)) {
		if len(got[i]) != len(c.expect[i]) {
			t.Errorf("%s:%d: row %d has %d columns, want %d", file, c.line, i, len(got[i]), len(c.expect[i]))
			continue
		}
		for j, want := range c.expect[i] {
			if ok, g := cellMatches(got[i][j], want); !ok {
				t.Errorf("%s:%d: row %d column %s = %s, want %s", file, c.line, i, cols[j], g, want)
			}
		}
	}
}

func hasColumn(cols []column, name string) bool {
	for _, c := range cols {
		if c.name == name {
			return true
		}
	}
	return false
}

// cellMatches compares a scanned value with its expected text; it also
// returns the value's text for messages.
func cellMatches(v any, want string) (bool, string) {
	if f, ok := toFloat(v); ok {
		g := strconv.FormatFloat(f, 'g', 17, 64)
		if want == "NaN" {
			return math.IsNaN(f), g
		}
		w, err := strconv.ParseFloat(want, 64)
		if err != nil {
			return false, g
		}
		return math.Abs(f-w) <= macroTol*math.Max(1, math.Abs(w)), g
	}
	g := formatCell(v)
	return g == want, g
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, true
	}
	return 0, false
}

func formatCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, len(x))
		for i, el := range x {
			if f, ok := toFloat(el); ok {
				parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
			} else {
				parts[i] = formatCell(el)
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}
