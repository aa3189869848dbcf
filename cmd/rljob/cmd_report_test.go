package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	// 8 panels: reward, entropy, the 4 charts without data, groups_kept
	// and the curriculum; one line each but entropy (3, 2, 1) and the
	// curriculum: the reward is 2/6 and groups_kept 0.5 at every step.
	if !strings.Contains(stdout, "wrote "+out+": 8 panels, 6 of them one line (constant or no data) (runs r1)") {
		t.Errorf("stdout %q", stdout)
	}
	r := readPage(t, out)
	if l := r.Series["r1"][report.RewardSeries]; l == nil || len(l.Y) != 3 || l.Y[0] != 2.0/6 {
		t.Errorf("reward (2 of 6 correct every step): %+v", l)
	}
	if l := r.Series["r1"]["actor/entropy"]; l == nil || !slices.Equal(l.Y, []float64{3, 2, 1}) {
		t.Errorf("entropy %+v", l)
	}
	flat := map[string]string{}
	for _, p := range r.Panels {
		flat[p.ID] = p.Flat
	}
	if !strings.HasPrefix(flat["kl"], "no data: no actor/kl_loss or actor/ppo_kl") || !strings.Contains(flat["groups_kept"], "= 0.5 at every point") || flat["entropy"] != "" {
		t.Errorf("one-line panels %q", flat)
	}
	// The run table: the calls' evaluated arguments, the job's sha256 and
	// the seed; x axes from rollouts and step markers.
	ri := r.RunTable[0]
	if ri.Config["reward[2].verifier"] != "exact" || len(ri.JobSHA256) != 1 || len(ri.JobSHA256[0]) != 64 || ri.Seed == "" || ri.Steps != 3 {
		t.Errorf("run table %+v", ri)
	}
	if ax := r.Axes["r1"]; !slices.Equal(ax.Rollouts, []float64{6, 12, 18}) || len(ax.WallS) != 3 {
		t.Errorf("axes %+v", ax)
	}
	if len(r.Samples) != 12 {
		t.Errorf("%d samples, want 6 of the first and 6 of the latest step", len(r.Samples))
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

// readPage reads the report JSON of an HTML report.
func readPage(t *testing.T, path string) *report.Report {
	t.Helper()
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)id="` + report.DataElementID + `">(.*?)</script>`).FindSubmatch(html)
	if m == nil {
		t.Fatalf("%s: no embedded data", path)
	}
	var r report.Report
	if err := json.Unmarshal(m[1], &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestReportRunsAndMessages: --run a,b overlays two runs (their seeds
// differ, so the run table highlights the seed); an unknown run and an
// empty lake exit 2 with a clear message and write a page saying so.
func TestReportRunsAndMessages(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	job := writeFile(t, dir, "job.sql", reportJob)
	for i, run := range []string{"r1", "r2"} {
		if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--run", run, "--seed", fmt.Sprint(i+1), "--steps", "2", "--log-format", "json"); code != 0 {
			t.Fatalf("run %s: exit %d: %s", run, code, stderr)
		}
	}
	out := filepath.Join(dir, "two.html")
	if code, stdout, stderr := rljob(t, nil, "report", "--lake", lake, "--run", "r1,r2", "--prompt", "p1", "-o", out); code != 0 || !strings.Contains(stdout, "(runs r1, r2)") {
		t.Fatalf("report --run r1,r2: exit %d: %s %s", code, stdout, stderr)
	}
	r := readPage(t, out)
	if len(r.RunTable) != 2 || r.Series["r2"]["actor/entropy"] == nil || !slices.Contains(r.Varied, "seed") {
		t.Errorf("runs %v, varied %v", r.Runs, r.Varied)
	}
	chosen := 0
	for _, s := range r.Samples {
		if s.Chosen && s.PromptID == "p1" {
			chosen++
		}
	}
	if chosen != 4 { // --prompt p1: its sample at steps 0 and 1 of both runs
		t.Errorf("%d samples of the chosen prompt p1, want 4", chosen)
	}

	page := filepath.Join(dir, "unknown.html")
	code, _, stderr := rljob(t, nil, "report", "--lake", lake, "--run", "r1,nosuch", "-o", page)
	if code != 2 || !strings.Contains(stderr, `run "nosuch" has no metrics and no rollouts`) || !strings.Contains(stderr, "runs with data: r1, r2") {
		t.Errorf("unknown run: exit %d, %s", code, stderr)
	}
	if r := readPage(t, page); !strings.Contains(r.Message, `run "nosuch" has no metrics`) || len(r.Panels) != 0 {
		t.Errorf("unknown-run page: message %q, %d panels", r.Message, len(r.Panels))
	}

	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	page = filepath.Join(dir, "empty.html")
	code, _, stderr = rljob(t, nil, "report", "--lake", empty, "--run", "r1", "-o", page)
	if code != 2 || !strings.Contains(stderr, "the lake has no run with metrics or rollouts yet") {
		t.Errorf("empty lake: exit %d, %s", code, stderr)
	}
	if r := readPage(t, page); !strings.Contains(r.Message, "runs with data: none") {
		t.Errorf("empty-lake page: %q", r.Message)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestReportWatch: report --watch writes the page, then rewrites it when
// the run commits another step, and stops cleanly when cancelled.
func TestReportWatch(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	job := writeFile(t, dir, "job.sql", reportJob)
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--run", "r1", "--steps", "1", "--log-format", "json"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "live.html")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"report", "--lake", lake, "--run", "r1", "--watch", "--interval", "100ms", "-o", out, "--log-format", "json"},
			strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	}()
	steps := func() int {
		if _, err := os.Stat(out); err != nil {
			return -1
		}
		l := readPage(t, out).Series["r1"]["actor/entropy"]
		if l == nil {
			return 0
		}
		return len(l.Y)
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for steps() != n {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("page never showed %d steps (shows %d); stdout %s stderr %s", n, steps(), stdout.String(), stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(1)
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--run", "r1", "--steps", "1", "--log-format", "json"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	waitFor(2)
	if r := readPage(t, out); r.RefreshS != 2 {
		t.Errorf("live page reloads every %d s, want 2 (--interval 100ms, at least 2 s)", r.RefreshS)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch exited %d after cancel: %s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "wrote "+out); n != 2 {
		t.Errorf("page written %d times, want 2 (once per new step): %s", n, stdout.String())
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
