package main

// Tests of the reference pages against the code: the stage table of
// docs/job-language.md, the tables, columns, views and macros of
// docs/lake.md, the command-line synopsis and exit codes of
// docs/operations.md. docs_links_test.go checks links and README.md's
// length, docs_sessions_test.go the terminal sessions the pages show.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/spf13/pflag"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
)

// repoRoot is the repository root (absolute, so that tests may change
// directory).
var repoRoot = func() string {
	p, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return p
}()

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(b)
}

// readSources concatenates the files matching the globs (relative to the
// repository root), leaving out Go test files.
func readSources(t *testing.T, globs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, g := range globs {
		m, err := filepath.Glob(filepath.Join(repoRoot, g))
		if err != nil || len(m) == 0 {
			t.Fatalf("no files match %s (%v)", g, err)
		}
		for _, f := range m {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			c, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(c)
		}
	}
	return b.String()
}

// tableRows returns the cells of the Markdown table rows of text whose
// first cell starts with prefix.
func tableRows(text, prefix string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "| "+prefix) {
			continue
		}
		var cells []string
		for _, c := range splitCells(strings.Trim(l, "|")) {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

// splitCells splits a table row on '|' outside backticks and not escaped.
func splitCells(row string) []string {
	var cells []string
	var cur strings.Builder
	inCode := false
	for i := 0; i < len(row); i++ {
		switch c := row[i]; {
		case c == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case c == '`':
			inCode = !inCode
			cur.WriteByte(c)
		case c == '|' && !inCode:
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(cells, cur.String())
}

var columnRE = regexp.MustCompile("^`([a-z_0-9]+)")

var stageCellRE = regexp.MustCompile("^`([a-z_]+)\\(([^)]*)\\)`$")

// TestDocStageTable: the stage table of docs/job-language.md has one row per
// registered stage, with its arguments in the order `rljob stages` lists.
func TestDocStageTable(t *testing.T) {
	text := readDoc(t, "docs/job-language.md")
	doc := map[string][]string{}
	for _, r := range tableRows(text, "`") {
		m := stageCellRE.FindStringSubmatch(r[0])
		if m == nil {
			continue
		}
		doc[m[1]] = strings.Split(strings.ReplaceAll(m[2], " ", ""), ",")
	}
	for _, s := range jobs.DefaultRegistry.Stages() {
		sp := s.Spec()
		var args []string
		for _, a := range sp.Args {
			args = append(args, a.Name)
		}
		got, ok := doc[sp.Name]
		if !ok {
			t.Errorf("docs/job-language.md: the stage table has no row for stage %s(%s)", sp.Name, strings.Join(args, ", "))
			continue
		}
		if !slices.Equal(got, args) {
			t.Errorf("docs/job-language.md: stage %s lists arguments %v, rljob stages has %v", sp.Name, got, args)
		}
		delete(doc, sp.Name)
	}
	for name := range doc {
		t.Errorf("docs/job-language.md: the stage table lists %s, which is not a registered stage", name)
	}
}

// docColumns reads the column names of a lake.md table cell: the first
// backticked word of each comma-separated item, up to the prose after " — ",
// "; " or ", then".
func docColumns(cell string) []string {
	cell, _, _ = strings.Cut(cell, " — ")
	cell, _, _ = strings.Cut(cell, "; ")
	cell, _, _ = strings.Cut(cell, ", then")
	var cols []string
	depth := 0
	start := 0
	for i := 0; i <= len(cell); i++ {
		if i < len(cell) {
			switch cell[i] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		item := strings.TrimSpace(cell[start:i])
		start = i + 1
		if m := columnRE.FindStringSubmatch(item); m != nil {
			cols = append(cols, m[1])
		}
	}
	return cols
}

// TestDocLakeTables: the Tables section of docs/lake.md names the columns
// of every table rljob writes, in file order.
func TestDocLakeTables(t *testing.T) {
	text := readDoc(t, "docs/lake.md")
	schemas := map[string][]string{
		"rollouts": fieldNames(arrowio.ViewSchema(arrowio.RolloutsSchema())),
		"rewards":  fieldNames(arrowio.ViewSchema(arrowio.RewardsSchema())),
		"metrics":  fieldNames(arrowio.ViewSchema(arrowio.MetricsSchema())),
		"steps":    fieldNames(arrowio.ViewSchema(arrowio.StepsSchema())),
		"calls":    fieldNames(arrowio.ViewSchema(arrowio.CallsSchema())),
		"prompts":  fieldNames(arrowio.PromptsSchema()),
	}
	found := map[string]bool{}
	for _, r := range tableRows(text, "`") {
		table := strings.Trim(r[0], "`")
		want, ok := schemas[table]
		if !ok || len(r) < 2 {
			continue
		}
		found[table] = true
		if got := docColumns(r[1]); !slices.Equal(got, want) {
			t.Errorf("docs/lake.md: table %s lists columns %v, its schema has %v", table, got, want)
		}
	}
	for table := range schemas {
		if !found[table] {
			t.Errorf("docs/lake.md: no row for table %s", table)
		}
	}
}

func fieldNames(s *arrow.Schema) []string {
	var n []string
	for _, f := range s.Fields() {
		n = append(n, f.Name)
	}
	return n
}

var (
	libNameRE   = regexp.MustCompile(`(?i)CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?(?:MACRO|VIEW)\s+([a-z_0-9]+)`)
	macroCellRE = regexp.MustCompile("`([a-z_]+)(?:\\(|`|<)")
)

// TestDocMacros: the Views and macros table of docs/lake.md lists every
// view and macro of sql/lib, and every other name it lists is defined in
// rljob's Go code (the UDFs, the engine's views).
func TestDocMacros(t *testing.T) {
	lib := map[string]bool{}
	for _, m := range libNameRE.FindAllStringSubmatch(readSources(t, "sql/lib/*.sql"), -1) {
		lib[strings.ToLower(m[1])] = true
	}
	if len(lib) == 0 {
		t.Fatal("no macros found in sql/lib")
	}
	goSrc := readSources(t, "sql/*.go", "jobs/*.go")
	text := readDoc(t, "docs/lake.md")
	_, views, ok := strings.Cut(text, "## Views and macros")
	if !ok {
		t.Fatal("docs/lake.md has no section Views and macros")
	}
	views, _, _ = strings.Cut(views, "\n## ")
	documented := map[string]bool{}
	for _, r := range tableRows(views, "`") {
		for _, m := range macroCellRE.FindAllStringSubmatch(r[0], -1) {
			name := m[1]
			documented[name] = true
			if !lib[name] && !strings.Contains(goSrc, `"`+name) {
				t.Errorf("docs/lake.md lists %s, which neither sql/lib nor rljob's Go code defines", name)
			}
		}
	}
	for name := range lib {
		if !documented[name] {
			t.Errorf("sql/lib defines %s, which docs/lake.md (Views and macros) does not list", name)
		}
	}
}

// commandFlags returns a FlagSet holding a command's flags and the global ones.
func commandFlags(c *command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	addGlobals(fs, &globals{}, func(string) string { return "" })
	return fs
}

var (
	longFlagRE  = regexp.MustCompile(`(?:^|[\s\[|])--([a-z][a-z0-9-]*)`)
	shortFlagRE = regexp.MustCompile(`(?:^|[\s\[|])-([a-zA-Z])\b`)
)

// TestDocCommandLine: the synopsis in docs/operations.md has a line for
// every command, every flag it shows exists, and it shows every flag of the
// command (the global --lake, --log-format and --log-level are described
// below it).
func TestDocCommandLine(t *testing.T) {
	text := readDoc(t, "docs/operations.md")
	_, rest, ok := strings.Cut(text, "## Command line\n\n```\n")
	if !ok {
		t.Fatal("docs/operations.md: no synopsis block under ## Command line")
	}
	synopsis, _, _ := strings.Cut(rest, "```")
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(synopsis), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "rljob" {
			t.Errorf("docs/operations.md: synopsis line %q does not start with rljob <command>", l)
			continue
		}
		lines[f[1]] += " " + strings.Join(f[2:], " ")
	}
	for name, c := range commands {
		l, ok := lines[name]
		if !ok {
			t.Errorf("docs/operations.md: the synopsis has no line for rljob %s", name)
			continue
		}
		delete(lines, name)
		fs := commandFlags(c)
		shown := map[string]bool{}
		for _, m := range longFlagRE.FindAllStringSubmatch(l, -1) {
			shown[m[1]] = true
			if fs.Lookup(m[1]) == nil {
				t.Errorf("docs/operations.md: rljob %s shows --%s, which it does not have", name, m[1])
			}
		}
		for _, m := range shortFlagRE.FindAllStringSubmatch(l, -1) {
			if f := fs.ShorthandLookup(m[1]); f == nil {
				t.Errorf("docs/operations.md: rljob %s shows -%s, which it does not have", name, m[1])
			} else {
				shown[f.Name] = true
			}
		}
		fs.VisitAll(func(f *pflag.Flag) {
			if !shown[f.Name] && f.Name != "lake" && f.Name != "log-format" && f.Name != "log-level" {
				t.Errorf("docs/operations.md: the synopsis of rljob %s lacks its flag --%s (%s)", name, f.Name, f.Usage)
			}
		})
	}
	for name := range lines {
		t.Errorf("docs/operations.md: the synopsis shows rljob %s, which is not a command", name)
	}
}

var (
	numberRE   = regexp.MustCompile(`^\d+$`)
	helpCodeRE = regexp.MustCompile(`(?m)^  (\d+) |\((\d+): `)
)

// TestDocExitCodes: the exit-code table of docs/operations.md has the codes
// `rljob --help` lists.
func TestDocExitCodes(t *testing.T) {
	var doc []string
	for _, r := range tableRows(readDoc(t, "docs/operations.md"), "") {
		for _, c := range strings.Split(r[0], ",") {
			if c = strings.TrimSpace(c); numberRE.MatchString(c) {
				doc = append(doc, c)
			}
		}
	}
	help := helpCodeRE.FindAllStringSubmatch(exitCodes, -1)
	var want []string
	for _, m := range help {
		want = append(want, m[1]+m[2])
	}
	slices.Sort(doc)
	slices.Sort(want)
	if len(want) < 6 || !slices.Equal(doc, want) {
		t.Errorf("docs/operations.md lists exit codes %v, rljob --help %v", doc, want)
	}
}
