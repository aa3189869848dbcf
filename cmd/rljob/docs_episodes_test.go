package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDocEpisodes: the sql:MACRO example of docs/episodes.md — its job file
// run for one step with seed 7 — writes the turns and rollouts rows the
// page shows.
func TestDocEpisodes(t *testing.T) {
	text := readDoc(t, "docs/episodes.md")
	_, rest, ok := strings.Cut(text, "The job (a tiny random policy")
	_, rest, ok2 := strings.Cut(rest, "```sql\n")
	job, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/episodes.md: no job block after \"The job (a tiny random policy\"")
	}
	dir := t.TempDir()
	lake := filepath.Join(dir, "L")
	jobFile := writeFile(t, dir, "job.sql", job)
	if code, _, stderr := rljob(t, nil, "run", jobFile, "--lake", lake, "--steps", "1", "--seed", "7"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	ss := sessions(t, "docs/episodes.md", "run with `rljob run job.sql")
	if len(ss) != 2 {
		t.Fatalf("docs/episodes.md: want 2 rljob sql commands, got %d", len(ss))
	}
	for _, s := range ss {
		args := append([]string{}, s.args...)
		for j := range args {
			if j > 0 && args[j-1] == "--lake" {
				args[j] = lake
			}
		}
		code, stdout, stderr := rljob(t, nil, args...)
		if code != 0 || stdout != s.output {
			t.Errorf("rljob %s: exit %d %s, printed:\n%s\ndocs/episodes.md shows:\n%s", strings.Join(s.args, " "), code, stderr, stdout, s.output)
		}
	}
}
