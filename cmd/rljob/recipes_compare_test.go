package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// make compare's script end to end at a tiny size (1 seed, the baseline,
// one 256-rollout slice, large k with 8 samples): perseed.csv follows the
// contract (arm,seed,metric,value; pass@1, pass@16, greedy, rollouts,
// updates for every arm, pass@K@8 and coverage@8 for the LARGEK arms),
// curves.csv has the start's evaluation as eval 0, and findings.md says
// "inconclusive (n < 8)" where it measured something. Needs bin/rljob
// (make build) and Go for the verdict program.
func TestCompareScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs examples/recipes/compare.sh (about 30 s)")
	}
	bin, _ := filepath.Abs("../../bin/rljob")
	if _, err := os.Stat(bin); err != nil {
		t.Skip("bin/rljob not built (make build)")
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("sh", filepath.Join(recipesDir, "compare.sh"))
	cmd.Env = append(os.Environ(), "BIN="+bin, "OUT="+out, "SEEDS=1", "ARMS=baseline", "BUDGET=256", "EVALS=1",
		"LARGEK=sft baseline", "PASSK_N=8", "TOOLS=0", "CHARTS=0", "JOBS=1")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compare.sh: %v\n%s", err, tail(string(b), 3000))
	}
	rows := map[string]float64{}
	csv := readFile(t, filepath.Join(out, "perseed.csv"))
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if lines[0] != "arm,seed,metric,value" {
		t.Fatalf("perseed.csv header %q", lines[0])
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		v, err := strconv.ParseFloat(f[3], 64)
		if len(f) != 4 || f[1] != "1" || err != nil {
			t.Fatalf("perseed.csv row %q", l)
		}
		rows[f[0]+" "+f[2]] = v
	}
	want := map[string]float64{"sft rollouts": 0, "sft updates": 0, "baseline rollouts": 256, "baseline updates": 1}
	for k, v := range want {
		if got, ok := rows[k]; !ok || got != v {
			t.Errorf("perseed.csv %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, arm := range []string{"sft", "baseline"} {
		for _, m := range []string{"pass@1", "pass@16", "greedy", "pass@1@8", "pass@2@8", "pass@4@8", "pass@8@8", "coverage@8"} {
			if v, ok := rows[arm+" "+m]; !ok || v < 0 || v > 1 {
				t.Errorf("perseed.csv %s %s = %v (present %v), want a rate", arm, m, v, ok)
			}
		}
	}
	if rows["baseline pass@8@8"] != rows["baseline coverage@8"] {
		t.Errorf("pass@8 from 8 samples %v ≠ coverage@8 %v", rows["baseline pass@8@8"], rows["baseline coverage@8"])
	}
	curves := readFile(t, filepath.Join(out, "curves.csv"))
	for _, prefix := range []string{"sft,1,0,0,", "baseline,1,0,0,", "baseline,1,1,256,"} {
		if !strings.Contains(curves, "\n"+prefix) {
			t.Errorf("curves.csv has no row %s...:\n%s", prefix, curves)
		}
	}
	if f := readFile(t, filepath.Join(out, "findings.md")); !strings.Contains(f, "| inconclusive (n < 8) |") {
		t.Errorf("findings.md has no inconclusive (n < 8) verdict:\n%s", f)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
