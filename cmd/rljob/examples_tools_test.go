package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestToolsExample runs examples/tools' job files at a small size (the
// demo's SFT of the tool traces, so that some GRPO groups differ; 40
// problems for 2 epochs without the tool; one GRPO step; 4 test problems)
// in the order demo.sh does: the calculator episodes run, the on-policy
// ratio is exact on them, and both evaluations log val/tools/pass@1. (The measured result is
// in examples/tools/README.md.)
func TestToolsExample(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the tools example's jobs")
	}
	dir, _ := filepath.Abs("../../examples/tools")
	lake := filepath.Join(t.TempDir(), "lake")
	run := func(job, run, steps string, sets ...string) {
		t.Helper()
		args := []string{"run", filepath.Join(dir, job+".sql"), "--lake", lake, "--run", run, "--seed", "1", "--steps", steps}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if code, _, stderr := rljob(t, nil, args...); code != 0 {
			t.Fatalf("%s (%s): exit %d: %s", job, run, code, stderr)
		}
	}
	run("prepare", "notool", "1")
	run("sft", "notool", "1", "sft_problems=40", "sft_epochs=2", "tool=false")
	run("eval", "notool", "1", "tool=false", "eval_problems=4")
	run("prepare", "tool", "1")
	run("sft", "tool", "1", "sft_epochs=12", "tool=true")
	run("grpo", "tool", "1")
	run("eval", "tool", "1", "tool=true", "eval_problems=4")
	sql := func(q string) string {
		t.Helper()
		code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", q)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", q, code, stderr)
		}
		return strings.TrimSpace(out)
	}
	if got := sql("SELECT run, count(*) FROM metrics WHERE name = 'val/tools/pass@1' GROUP BY run ORDER BY run"); got != "run,count_star()\nnotool,1\ntool,1" {
		t.Errorf("pass@1 metrics:\n%s", got)
	}
	if got := sql("SELECT value FROM metrics WHERE run = 'tool' AND name = 'actor/first_max_abs_log_ratio'"); got != "value\n0.0" {
		t.Errorf("first_max_abs_log_ratio on episodes:\n%s", got)
	}
	if got := sql("SELECT count(*) > 0 FROM turns WHERE run = 'tool' AND status = 'continue' AND observation LIKE '<result>%</result>'"); got != "(count_star() > 0)\ntrue" {
		t.Errorf("no calculator result appended:\n%s", got)
	}
	if got := sql("SELECT count(*) FROM turns WHERE run = 'notool'"); got != "count_star()\n0" {
		t.Errorf("the run without the tool has turns:\n%s", got)
	}
}
