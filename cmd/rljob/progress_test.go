package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// progressLines parses the JSON log lines whose message is "progress".
func progressLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == "progress" {
			out = append(out, m)
		}
	}
	return out
}

func TestLogProgress(t *testing.T) {
	tests := []struct {
		name  string
		stage string
		total int64
		// adds: seconds after the start at which Add(n) happens.
		adds []struct {
			at float64
			n  int64
		}
		want []string // one per expected line: the fields that must appear, as JSON fragments
	}{
		{
			name: "short stage logs nothing", stage: "sft", total: 10,
			adds: []struct {
				at float64
				n  int64
			}{{1, 5}, {2, 5}},
		},
		{
			name: "one line per interval with rate and eta", stage: "sft", total: 100,
			adds: []struct {
				at float64
				n  int64
			}{{10, 10}, {29, 10}, {30, 10}, {31, 10}, {59, 10}, {61, 10}},
			want: []string{
				`"stage":"sft","done":30,"total":100,"unit":"updates","rate":1,"eta":"1m10s","elapsed":"30s"`,
				`"stage":"sft","done":60,"total":100,"unit":"updates","rate":0.984,"eta":"41s","elapsed":"1m1s"`,
			},
		},
		{
			name: "rollout counts sequences", stage: "rollout", total: 4096,
			adds: []struct {
				at float64
				n  int64
			}{{40, 256}},
			want: []string{`"stage":"rollout","done":256,"total":4096,"unit":"sequences","rate":6.4,"eta":"10m0s","elapsed":"40s"`},
		},
		{
			name: "unknown total: no total, no eta", stage: "reward", total: 0,
			adds: []struct {
				at float64
				n  int64
			}{{45, 1000}},
			want: []string{`"stage":"reward","done":1000,"unit":"rows","rate":22.2,"elapsed":"45s"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			start := clock.t
			p := &logProgress{log: zerolog.New(&buf), every: 30 * time.Second, now: clock.now}
			b := p.Bar(tc.stage, tc.total)
			for _, a := range tc.adds {
				clock.t = start.Add(time.Duration(a.at * float64(time.Second)))
				b.Add(a.n)
			}
			b.Done()
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), buf.String())
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) || !strings.Contains(lines[i], `"message":"progress"`) {
					t.Errorf("line %d:\n %s\nwant it to contain\n %s", i, lines[i], w)
				}
			}
		})
	}
}

// progressJob: a tiny policy (step 0), then SFT on 400 examples in batches
// of 4 for 4 epochs, 400 updates (step 1), which takes longer than the
// 50 ms progress interval of the test.
const progressJob = `CREATE OR REPLACE TABLE d AS
SELECT i::VARCHAR || '+' || (i % 7)::VARCHAR || '=' AS prompt, (i + i % 7)::VARCHAR AS completion FROM range(400) t(i);
CALL init_policy(config := 'tiny', tokenizer := 'chars:0123456789+=', when := getvariable('step') = 0);
CALL sft(data := 'd', epochs := 4, batch_size := 4, when := getvariable('step') = 1);
`

// TestProgressInBatchLog: rljob run with stderr not a terminal logs
// progress lines for a stage that outlasts --progress-interval, with the
// right unit and total; --progress-interval 0 logs none.
func TestProgressInBatchLog(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny model for a second; skipped under -short")
	}
	dir := t.TempDir()
	job := writeFile(t, dir, "job.sql", progressJob)
	lake := filepath.Join(dir, "lake")
	code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--steps", "2", "--progress-interval", "50ms")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	lines := progressLines(t, stderr)
	if len(lines) < 2 {
		t.Fatalf("%d progress lines, want at least 2:\n%s", len(lines), stderr)
	}
	last := -1.0
	for _, l := range lines {
		if l["stage"] != "sft" || l["unit"] != "updates" || l["total"] != 400.0 || l["level"] != "info" {
			t.Errorf("progress line %v: want stage sft, unit updates, total 400", l)
		}
		d, _ := l["done"].(float64)
		if d <= last || d > 400 {
			t.Errorf("done %v after %v", d, last)
		}
		last = d
		if _, ok := l["rate"].(float64); !ok {
			t.Errorf("no rate in %v", l)
		}
	}

	lake2 := filepath.Join(dir, "lake2")
	code, _, stderr = rljob(t, nil, "run", job, "--lake", lake2, "--steps", "2", "--progress-interval", "0")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	if n := len(progressLines(t, stderr)); n != 0 {
		t.Errorf("--progress-interval 0: %d progress lines", n)
	}
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake2, "--progress-interval", "-1s"); code != 2 || !strings.Contains(stderr, "--progress-interval -1s: must be >= 0") {
		t.Errorf("negative interval: exit %d: %s", code, stderr)
	}
}
