package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/report"
)

// reportJob writes, per step, 6 train rollouts (prompt i correct iff i%3=0),
// their rewards, and metrics actor/entropy = 3 - step and
// train/groups_kept = 0.5 through the save, reward and log_metrics stages.
const reportJob = `CREATE OR REPLACE TABLE samples AS
SELECT 'p' || i || '/' || getvariable('step') AS rollout_id, 'p' || i AS prompt_id, 0 AS sample_idx,
       'what is ' || i AS prompt,
       CASE WHEN i % 3 = 0 THEN CAST(i AS VARCHAR) ELSE 'wrong' END AS completion,
       CAST(i AS VARCHAR) AS answer, 'train' AS tag
FROM range(6) t(i) ORDER BY rollout_id;
CALL save(source := 'samples', output := 'rollouts');
CALL reward(verifier := 'exact');
CALL log_metrics(query := 'SELECT ''actor/entropy'' AS name, 3.0 - getvariable(''step'') AS value UNION ALL SELECT ''train/groups_kept'', 0.5');
`

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	job := writeFile(t, dir, "job.sql", reportJob)
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--run", "r1", "--steps", "3", "--log-format", "json"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "report.html")
	code, stdout, stderr := rljob(t, nil, "report", "--lake", lake, "--run", "r1", "-o", out)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out+": 9 charts (runs r1;") {
		t.Errorf("stdout %q", stdout)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)id="` + report.DataElementID + `">(.*?)</script>`).FindSubmatch(html)
	if m == nil {
		t.Fatal("no embedded data")
	}
	var r report.Report
	if err := json.Unmarshal(m[1], &r); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*report.Chart{}
	for _, c := range r.Charts {
		byID[c.ID] = c
	}
	// Reward from scored: 2 of 6 correct every step.
	if c := byID["reward"]; c == nil || len(c.Series) != 1 || len(c.Series[0].Y) != 3 || c.Series[0].Y[0] != 2.0/6 {
		t.Errorf("reward chart %+v", c)
	}
	if c := byID["entropy"]; c == nil || len(c.Series) != 1 || !slices.Equal(c.Series[0].Y, []float64{3, 2, 1}) {
		t.Errorf("entropy chart %+v", c)
	}
	if c := byID["kl"]; c == nil || len(c.Series) != 0 || len(c.Notes) != 1 {
		t.Errorf("kl chart should say no data: %+v", c)
	}

	pngDir := filepath.Join(dir, "charts")
	code, stdout, stderr = rljob(t, nil, "report", "--lake", lake, "--run", "r1", "--format", "png", "-o", pngDir)
	if code != 0 || !strings.Contains(stdout, "wrote 9 charts to "+pngDir) {
		t.Fatalf("report --format png: exit %d: %s %s", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(pngDir); len(ents) != 9 {
		t.Errorf("%d files in %s, want 9", len(ents), pngDir)
	}
}

func TestReportFlagErrors(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	job := writeFile(t, dir, "job.sql", reportJob)
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--run", "r1", "--log-format", "json"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	file := writeFile(t, dir, "afile", "x")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no run", []string{"--lake", lake}, "no run given"},
		{"run twice", []string{"--lake", lake, "--run", "r1", "--run", "r1"}, `--run "r1": empty or given twice`},
		{"unknown run", []string{"--lake", lake, "--run", "r2"}, `run "r2" has no metrics and no rollouts in lake`},
		{"bad format", []string{"--lake", lake, "--run", "r1", "--format", "svg"}, `bad --format "svg"`},
		{"html into folder", []string{"--lake", lake, "--run", "r1", "-o", dir}, "is a folder"},
		{"png into file", []string{"--lake", lake, "--run", "r1", "--format", "png", "-o", file}, "is a file"},
		{"missing parent", []string{"--lake", lake, "--run", "r1", "-o", filepath.Join(dir, "no", "r.html")}, "does not exist"},
		{"missing lake", []string{"--lake", filepath.Join(dir, "nolake"), "--run", "r1"}, "does not exist"},
		{"positional", []string{"--lake", lake, "r1"}, "takes no positional arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"report", "-o", filepath.Join(t.TempDir(), "r.html")}, tc.args...)
			code, _, stderr := rljob(t, nil, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}
