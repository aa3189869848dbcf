package main

// The terminal sessions the pages show — error messages, a --dry-run, the
// GSM8K quick start, a progress line, rljob version, log lines — are what
// rljob prints.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

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
	if len(ss) != 3 || ss[0].args[0] != "run" {
		t.Fatalf("README.md: want 3 commands, the first rljob run, got %d", len(ss))
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

// TestDocVersionLine: README.md's `rljob version` output has the lines
// rljob prints, the first two in their exact shape.
func TestDocVersionLine(t *testing.T) {
	text := readDoc(t, "README.md")
	_, rest, ok := strings.Cut(text, "$ bin/rljob version\n")
	if !ok {
		t.Fatal("README.md shows no rljob version output")
	}
	var shown []string
	for _, l := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(l, "    ") {
			break
		}
		shown = append(shown, strings.TrimSpace(l))
	}
	_, out, _ := rljob(t, nil, "version")
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != len(shown) {
		t.Fatalf("rljob version prints %d lines, README.md shows %d:\n%s", len(got), len(shown), out)
	}
	for i := range got {
		if first(got[i]) != first(shown[i]) {
			t.Errorf("version line %d: README.md shows %q, rljob prints %q", i+1, shown[i], got[i])
		}
	}
	shape := []*regexp.Regexp{
		regexp.MustCompile(`^rljob \S+ \(go[0-9.]+, [a-z0-9]+/[a-z0-9]+, duckdb v[0-9.]+\)$`),
		regexp.MustCompile(`^module github\.com/rljob/rljob \S+(, revision [0-9a-f]+ \([0-9TZ:-]+\)(, modified)?)?, tags \S+$`),
	}
	for i, re := range shape {
		if i < len(got) && (!re.MatchString(shown[i]) || !re.MatchString(got[i])) {
			t.Errorf("version line %d: README.md shows %q, rljob prints %q; want both to match %s", i+1, shown[i], got[i], re)
		}
	}
}

// first is the first word of s.
func first(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
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
	code := readSources(t, "jobs/*.go", "jobs/rl/*.go", "cmd/rljob/*.go")
	// log_metrics logs each metric as a field: its name is in a job file.
	jobsSQL := readSources(t, "examples/*/*.sql", "sql/lib/*.sql")
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
				if !strings.Contains(code, `"`+k[1]+`"`) && !strings.Contains(jobsSQL, `'`+k[1]+`'`) {
					t.Errorf("%s:%d: log field %s= is not in rljob's code", page, i+1, k[1])
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d log lines found in the docs", checked)
	}
}
