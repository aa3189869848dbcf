package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rljob lake views writes statements that name the lake's files by
// absolute path and load the macro library.
func TestLakeViewsCommand(t *testing.T) {
	lake := baseLake(t)
	out := filepath.Join(t.TempDir(), "views.sql")
	if code, _, stderr := rljob(t, nil, "lake", "views", "--lake", lake, "-o", out); code != 0 {
		t.Fatalf("lake views: exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	abs, _ := filepath.Abs(lake)
	for _, want := range []string{"CREATE OR REPLACE VIEW rollouts AS", abs + "/rollouts/", "CREATE OR REPLACE VIEW prompt_stats", "CREATE OR REPLACE MACRO grpo_advantages"} {
		if !strings.Contains(s, want) {
			t.Errorf("views.sql lacks %q", want)
		}
	}
}
