package main

// Tests of the documentation: README.md and docs/*.md link only to files and
// headings that exist, README.md stays a front door (at most 300 lines), and
// what the pages show — the stage table, the lake's tables and macros, the
// command-line synopsis, exit codes, error messages and the GSM8K quick
// start — is what rljob does.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

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

// maxREADMELines bounds README.md: reference material belongs in docs/.
const maxREADMELines = 300

// pendingPages may be linked before they exist: they are generated on
// another branch (docs/stages.md from `rljob stages`). Once a page exists its
// links and anchors are checked like any other.
var pendingPages = map[string]bool{"docs/stages.md": true}

// docPages lists the Markdown files whose links are checked.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	for _, g := range []string{"docs/*.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, g))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(repoRoot, p)
			pages = append(pages, filepath.ToSlash(rel))
		}
	}
	return pages
}

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(b)
}

// proseLines returns the lines of a Markdown text outside fenced code
// blocks, with their 1-based line numbers.
func proseLines(text string) (lines []string, nums []int) {
	inFence := false
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			lines, nums = append(lines, l), append(nums, i+1)
		}
	}
	return lines, nums
}

// slug is GitHub's anchor for a heading: lower case, letters, digits, '-'
// and '_' kept, spaces turned into '-', everything else dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors returns the heading anchors of a Markdown text, numbering repeats
// as GitHub does (x, x-1, x-2, ...).
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	lines, _ := proseLines(text)
	for _, l := range lines {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		s := slug(h)
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

var (
	linkRE       = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	inlineCodeRE = regexp.MustCompile("`[^`]*`")
)

// TestDocLinks: every relative link of README.md, docs/*.md and the
// examples' READMEs names a file that exists, and its #anchor a heading of
// that file.
func TestDocLinks(t *testing.T) {
	for _, page := range docPages(t) {
		text := readDoc(t, page)
		lines, nums := proseLines(text)
		for i, l := range lines {
			for _, m := range linkRE.FindAllStringSubmatch(inlineCodeRE.ReplaceAllString(l, ""), -1) {
				checkLink(t, page, nums[i], m[1])
			}
		}
	}
}

func checkLink(t *testing.T, page string, line int, target string) {
	t.Helper()
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return
	}
	path, anchor, _ := strings.Cut(target, "#")
	rel := page
	if path != "" {
		rel = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), path)))
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		if pendingPages[rel] && os.IsNotExist(err) {
			t.Logf("%s:%d: link to %s, a page generated on another branch, not here yet", page, line, rel)
			return
		}
		t.Errorf("%s:%d: link %q: %s does not exist", page, line, target, rel)
		return
	}
	if anchor != "" && strings.HasSuffix(rel, ".md") && !anchors(string(b))[anchor] {
		t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", page, line, target, rel, anchor)
	}
}

func TestREADMEIsShort(t *testing.T) {
	n := strings.Count(readDoc(t, "README.md"), "\n")
	if n > maxREADMELines {
		t.Errorf("README.md has %d lines, more than %d: move reference material into a docs/ page and link it", n, maxREADMELines)
	}
}

// TestSlug pins the anchor rule the link check relies on.
func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"What a statement sees (snapshot reads)":   "what-a-statement-sees-snapshot-reads",
		"Locks, checks, argument names":            "locks-checks-argument-names",
		"Choices made where the design was silent": "choices-made-where-the-design-was-silent",
		"The `exec` stage: über-fast, 2× (v1.2)":   "the-exec-stage-über-fast-2-v12",
		"Progress in batch logs":                   "progress-in-batch-logs",
		"Testing and source layout":                "testing-and-source-layout",
		"Your first RL run":                        "your-first-rl-run",
		"cron":                                     "cron",
		"What a step costs as the run grows":       "what-a-step-costs-as-the-run-grows",
		"The same views outside rljob":             "the-same-views-outside-rljob",
		"Arguments are SQL expressions":            "arguments-are-sql-expressions",
		"Shards in lockstep":                       "shards-in-lockstep",
		"Maintenance":                              "maintenance",
		"Compaction":                               "compaction",
		"Several checkpoints per step":             "several-checkpoints-per-step",
		"Iterations and variables":                 "iterations-and-variables",
		"What one job file still cannot express":   "what-one-job-file-still-cannot-express",
		"The trainer and kernels":                  "the-trainer-and-kernels",
		"How a job file works":                     "how-a-job-file-works",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
	if a := anchors("# A\n## A\n```\n# B\n```\n## A\n"); !a["a"] || !a["a-1"] || !a["a-2"] || a["b"] {
		t.Errorf("anchors: %v", a)
	}
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

var libNameRE = regexp.MustCompile(`(?i)CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?(?:MACRO|VIEW)\s+([a-z_0-9]+)`)

// TestDocMacros: the Views and macros table of docs/lake.md lists every
// view and macro of sql/lib, and every other name it lists is defined in
// rljob's Go code (the UDFs, the engine's views).
func TestDocMacros(t *testing.T) {
	lib := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "sql/lib/*.sql"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range libNameRE.FindAllStringSubmatch(string(b), -1) {
			lib[strings.ToLower(m[1])] = true
		}
	}
	if len(lib) == 0 {
		t.Fatal("no macros found in sql/lib")
	}
	var goSrc strings.Builder
	for _, g := range []string{"sql/*.go", "jobs/*.go"} {
		m, _ := filepath.Glob(filepath.Join(repoRoot, g))
		for _, f := range m {
			if !strings.HasSuffix(f, "_test.go") {
				b, _ := os.ReadFile(f)
				goSrc.Write(b)
			}
		}
	}
	text := readDoc(t, "docs/lake.md")
	_, views, ok := strings.Cut(text, "## Views and macros")
	if !ok {
		t.Fatal("docs/lake.md has no section Views and macros")
	}
	views, _, _ = strings.Cut(views, "\n## ")
	documented := map[string]bool{}
	for _, r := range tableRows(views, "`") {
		for _, m := range regexp.MustCompile("`([a-z_]+)(?:\\(|`|<)").FindAllStringSubmatch(r[0], -1) {
			name := m[1]
			documented[name] = true
			if !lib[name] && !strings.Contains(goSrc.String(), `"`+name) {
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

// TestDocExitCodes: the exit-code table of docs/operations.md has the codes
// `rljob --help` lists.
func TestDocExitCodes(t *testing.T) {
	var doc []string
	for _, r := range tableRows(readDoc(t, "docs/operations.md"), "") {
		for _, c := range strings.Split(r[0], ",") {
			if c = strings.TrimSpace(c); regexp.MustCompile(`^\d+$`).MatchString(c) {
				doc = append(doc, c)
			}
		}
	}
	help := regexp.MustCompile(`(?m)^  (\d+) |\((\d+): `).FindAllStringSubmatch(exitCodes, -1)
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

// session is one "$ command" of a shown terminal session and its output.
type session struct {
	args    []string // after "rljob", up to a "#" comment
	comment string   // after the "#"
	output  string
}

// sessions parses the first fenced block after the line containing marker:
// each "$ rljob ..." line starts a command whose output runs to the next
// one (trailing blank lines dropped).
func sessions(t *testing.T, page, marker string) []session {
	t.Helper()
	text := readDoc(t, page)
	_, rest, ok := strings.Cut(text, marker)
	if !ok {
		t.Fatalf("%s: no %q", page, marker)
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("%s: no code block after %q", page, marker)
	}
	var out []session
	for _, l := range strings.Split(block, "\n") {
		if cmd, isCmd := strings.CutPrefix(l, "$ rljob "); isCmd {
			cmd, comment, _ := strings.Cut(cmd, "#")
			out = append(out, session{args: shellFields(t, cmd), comment: strings.TrimSpace(comment)})
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].output += l + "\n"
		}
	}
	for i := range out {
		out[i].output = strings.TrimRight(out[i].output, "\n") + "\n"
	}
	return out
}

// TestDocErrorExamples: the error messages docs/operations.md shows are the
// ones rljob prints, byte for byte.
func TestDocErrorExamples(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad1.sql", "-- a misspelt argument name\nCALL reward(verfier := 'gsm8k');\n")
	writeFile(t, dir, "bad2.sql", "CREATE TABLE t AS SELECT 1 AS x;\nSELECT * FROM t WHERE x =\n")
	t.Chdir(dir)
	ss := sessions(t, "docs/operations.md", "Errors name the place and the fix")
	if len(ss) < 3 {
		t.Fatalf("docs/operations.md: %d error examples, want 3 or more", len(ss))
	}
	for _, s := range ss {
		code, _, stderr := rljob(t, nil, append(s.args, "--lake", filepath.Join(dir, "lake"))...)
		if code != 2 || stderr != s.output {
			t.Errorf("rljob %s: exit %d, stderr:\n%s\ndocs/operations.md shows:\n%s", strings.Join(s.args, " "), code, stderr, s.output)
		}
	}
}

// shellFields splits a shown command line into words as sh would, for the
// quoting the docs use ("..." and '...' without escapes).
func shellFields(t *testing.T, cmd string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", cmd)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

var logTimeRE = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d `)

// TestDocDryRunExample: the --dry-run example of docs/job-language.md
// prints what the page shows (log times aside).
func TestDocDryRunExample(t *testing.T) {
	ss := sessions(t, "docs/job-language.md", "checks the grammar of every expression")
	if len(ss) != 1 || !strings.HasPrefix(ss[0].comment, "CALL ") {
		t.Fatalf("docs/job-language.md: want one dry-run example with its job file in a comment, got %+v", ss)
	}
	dir := t.TempDir()
	writeFile(t, dir, "job.sql", ss[0].comment+"\n")
	t.Chdir(dir)
	code, stdout, stderr := rljob(t, nil, append(ss[0].args, "--lake", filepath.Join(dir, "lake"), "--log-format", "console")...)
	got := logTimeRE.ReplaceAllString(stderr+stdout, "")
	if want := logTimeRE.ReplaceAllString(ss[0].output, ""); code != 0 || got != want {
		t.Errorf("exit %d, output:\n%s\ndocs/job-language.md shows:\n%s", code, got, want)
	}
}

// logFields normalises console log lines for comparison: the time and the
// fields that measure time (seconds=, took=) are dropped.
func logFields(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(logTimeRE.ReplaceAllString(s, "")), "\n") {
		var keep []string
		for _, f := range strings.Fields(l) {
			if !strings.HasPrefix(f, "seconds=") && !strings.HasPrefix(f, "took=") {
				keep = append(keep, f)
			}
		}
		out = append(out, strings.Join(keep, " "))
	}
	return strings.Join(out, "\n")
}

// TestREADMEQuickStart: the GSM8K session README.md shows under Quick start
// is what rljob prints on the full GSM8K test set (log times and durations
// aside); the last line is examples/demo.sh's own.
func TestREADMEQuickStart(t *testing.T) {
	const data = "../shared/data/gsm8k/test.jsonl"
	if _, err := os.Stat(filepath.Join(repoRoot, data)); err != nil {
		t.Skipf("%s absent (the README's session uses the full GSM8K test set): %v", data, err)
	}
	ss := sessions(t, "README.md", "The GSM8K part, as it ran:")
	if len(ss) != 4 || ss[0].args[0] != "run" {
		t.Fatalf("README.md: want 4 commands, the first rljob run, got %d", len(ss))
	}
	lake := filepath.Join(t.TempDir(), "lake")
	t.Chdir(repoRoot)
	for i, s := range ss {
		args := slices.Clone(s.args)
		for j := range args {
			if j > 0 && args[j-1] == "--lake" {
				args[j] = lake
			}
		}
		if i == 0 {
			args = append(args, "--run", "demo", "--log-format", "console") // as examples/demo.sh runs it
		}
		code, stdout, stderr := rljob(t, nil, args...)
		if code != 0 {
			t.Fatalf("rljob %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		switch {
		case i == 0:
			if got, want := logFields(stderr), logFields(s.output); got != want {
				t.Errorf("rljob %s logged:\n%s\nREADME.md shows:\n%s", strings.Join(s.args, " "), got, want)
			}
		case !strings.HasPrefix(s.output, stdout):
			t.Errorf("rljob %s printed:\n%s\nREADME.md shows:\n%s", strings.Join(s.args, " "), stdout, s.output)
		}
	}
}

var jsonTimeRE = regexp.MustCompile(`"time":"[^"]*",`)

// TestDocProgressLine: the progress line docs/operations.md shows is what
// rljob's JSON logger writes for that stage, count and elapsed time (the
// time stamp aside).
func TestDocProgressLine(t *testing.T) {
	text := readDoc(t, "docs/operations.md")
	_, rest, _ := strings.Cut(text, "## Progress in batch logs")
	_, rest, ok := strings.Cut(rest, "\n    {")
	if !ok {
		t.Fatal("docs/operations.md: no progress line under ## Progress in batch logs")
	}
	line, _, _ := strings.Cut(rest, "\n")
	line = "{" + line
	var shown struct {
		Stage, Elapsed string
		Done, Total    int64
	}
	if err := json.Unmarshal([]byte(line), &shown); err != nil {
		t.Fatalf("docs/operations.md: progress line %s: %v", line, err)
	}
	elapsed, err := time.ParseDuration(shown.Elapsed)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", "info", false)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	bar := (&logProgress{log: log, every: elapsed, now: clock.now}).Bar(shown.Stage, shown.Total)
	clock.t = clock.t.Add(elapsed)
	bar.Add(shown.Done)
	got := jsonTimeRE.ReplaceAllString(strings.TrimSpace(buf.String()), "")
	if want := jsonTimeRE.ReplaceAllString(line, ""); got != want {
		t.Errorf("rljob logs\n%s\ndocs/operations.md shows\n%s", got, want)
	}
}

// TestDocVersionLine: README.md's `rljob version` lines have the shape
// rljob prints.
func TestDocVersionLine(t *testing.T) {
	text := readDoc(t, "README.md")
	_, rest, ok := strings.Cut(text, "$ bin/rljob version\n")
	if !ok {
		t.Fatal("README.md shows no rljob version output")
	}
	shown := strings.Split(rest, "\n")[:2]
	for i := range shown {
		shown[i] = strings.TrimSpace(shown[i])
	}
	_, out, _ := rljob(t, nil, "version")
	got := strings.Split(strings.TrimSpace(out), "\n")
	shape := []*regexp.Regexp{
		regexp.MustCompile(`^rljob \S+ \(go[0-9.]+, [a-z0-9]+/[a-z0-9]+, duckdb v[0-9.]+\)$`),
		regexp.MustCompile(`^module github\.com/rljob/rljob \S+(, revision [0-9a-f]+ \([0-9TZ:-]+\)(, modified)?)?, tags \S+$`),
	}
	if len(got) != 2 {
		t.Fatalf("rljob version printed %q", out)
	}
	for i, re := range shape {
		if !re.MatchString(shown[i]) || !re.MatchString(got[i]) {
			t.Errorf("version line %d: README.md shows %q, rljob prints %q; want both to match %s", i+1, shown[i], got[i], re)
		}
	}
}

var (
	consoleLogRE = regexp.MustCompile(`^\d\d:\d\d:\d\d (?:INF|WRN|ERR|DBG) (.*)$`)
	logKeyRE     = regexp.MustCompile(`(?:^| )([a-z_]+)=`)
)

// TestDocLogLines: every console log line the pages show carries a message
// and field names rljob's code writes, or metric names a job file logs
// (messages with numbers in them are formatted, and only their fields are
// checked).
func TestDocLogLines(t *testing.T) {
	var src strings.Builder
	for _, g := range []string{"jobs/*.go", "jobs/rl/*.go", "cmd/rljob/*.go"} {
		m, _ := filepath.Glob(filepath.Join(repoRoot, g))
		for _, f := range m {
			if !strings.HasSuffix(f, "_test.go") {
				b, _ := os.ReadFile(f)
				src.Write(b)
			}
		}
	}
	code := src.String()
	// log_metrics logs each metric as a field: its name is in a job file.
	var jobsSQL strings.Builder
	for _, g := range []string{"examples/*/*.sql", "sql/lib/*.sql"} {
		m, _ := filepath.Glob(filepath.Join(repoRoot, g))
		for _, f := range m {
			b, _ := os.ReadFile(f)
			jobsSQL.Write(b)
		}
	}
	checked := 0
	for _, page := range docPages(t) {
		for i, l := range strings.Split(readDoc(t, page), "\n") {
			m := consoleLogRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			checked++
			msg, fields := m[1], ""
			if loc := logKeyRE.FindStringIndex(msg); loc != nil {
				msg, fields = strings.TrimSpace(msg[:loc[0]]), msg[loc[0]:]
			}
			msg = strings.TrimSuffix(msg, " ...")
			if !strings.ContainsAny(msg, "0123456789") && !strings.Contains(code, `"`+msg+`"`) {
				t.Errorf("%s:%d: log message %q is not in rljob's code", page, i+1, msg)
			}
			for _, k := range logKeyRE.FindAllStringSubmatch(fields, -1) {
				if !strings.Contains(code, `"`+k[1]+`"`) && !strings.Contains(jobsSQL.String(), `'`+k[1]+`'`) {
					t.Errorf("%s:%d: log field %s= is not in rljob's code", page, i+1, k[1])
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d log lines found in the docs", checked)
	}
}
