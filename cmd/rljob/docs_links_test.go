package main

// Links in README.md, docs/*.md and the examples' READMEs name files and
// headings that exist; README.md stays a front door.

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

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
		"What a statement sees (snapshot reads)": "what-a-statement-sees-snapshot-reads",
		"Locks, checks, argument names":          "locks-checks-argument-names",
		"The `exec` stage: über-fast, 2× (v1.2)": "the-exec-stage-über-fast-2-v12",
		"snake_case and CamelCase":               "snake_case-and-camelcase",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
	if a := anchors("# A\n## A\n```\n# B\n```\n## A\n"); !a["a"] || !a["a-1"] || !a["a-2"] || a["b"] {
		t.Errorf("anchors: %v", a)
	}
}

// repoFileRE matches a repository file named in prose or code: a path under
// one of the top folders, ending in an extension.
var repoFileRE = regexp.MustCompile(`(?:^|[^\w/.$-])((?:examples|sql|jobs|cmd|trainer|kernels|arrowio|report|scripts|docs)/[A-Za-z0-9_./-]*\.(?:sql|sh|md|go|json|jsonl|png|txt))\b`)

// TestDocFilesExist: every repository file the pages name (job files,
// scripts, pages), in prose or in a command, exists — relative to the
// repository root or to the page.
func TestDocFilesExist(t *testing.T) {
	checked := 0
	for _, page := range docPages(t) {
		for i, l := range strings.Split(readDoc(t, page), "\n") {
			for _, m := range repoFileRE.FindAllStringSubmatch(l, -1) {
				checked++
				_, errRoot := os.Stat(filepath.Join(repoRoot, m[1]))
				_, errPage := os.Stat(filepath.Join(repoRoot, filepath.Dir(page), m[1]))
				if errRoot != nil && errPage != nil && !pendingPages[m[1]] {
					t.Errorf("%s:%d: names %s, which does not exist", page, i+1, m[1])
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d file names found in the docs", checked)
	}
}
