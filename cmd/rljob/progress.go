package main

import (
	"math"
	"time"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/jobs"
)

// stageUnits names what a stage's progress counts (the n of Bar.Add): the
// sampler and logprobs count sequences (samples), sft and train count
// optimizer updates, reward counts input rows.
var stageUnits = map[string]string{
	"rollout":  "sequences",
	"logprobs": "sequences",
	"sft":      "updates",
	"train":    "updates",
	"reward":   "rows",
	"exec":     "seconds",
}

// unitOf returns the unit of a stage's progress ("items" for a stage not in
// stageUnits).
func unitOf(stage string) string {
	if u, ok := stageUnits[stage]; ok {
		return u
	}
	return "items"
}

// defaultProgressInterval is how often a long stage logs its progress when
// stderr is not a terminal (Slurm and cron logs); --progress-interval.
const defaultProgressInterval = 30 * time.Second

// logProgress is the jobs.Progress for batch logs: instead of a bar, a
// stage still running after each interval logs one line
//
//	INF progress stage=sft done=120 total=375 unit=updates rate=6.1 eta=42s elapsed=20s
//
// (rate in units per second since the stage began; eta from that rate; total
// and eta absent when the stage does not know its total). A stage shorter
// than the interval logs nothing.
//
// The line is written by the stage's own goroutine, from Add, once an
// interval has passed since the last line: the logger's writer is shared
// with the runner's log lines and is not synchronised, so a ticker goroutine
// of its own would race with them. A stage therefore reports when it makes
// progress; one whose Add calls are further apart than the interval (a huge
// rollout chunk) logs once per call.
type logProgress struct {
	log   zerolog.Logger
	every time.Duration
	now   func() time.Time // time.Now; tests replace it
}

func (p *logProgress) Bar(name string, total int64) jobs.Bar {
	now := p.now
	if now == nil {
		now = time.Now
	}
	t := now()
	return &logBar{log: p.log, every: p.every, now: now, name: name, unit: unitOf(name), total: total, start: t, last: t}
}

// logBar is one stage's progress.
type logBar struct {
	log         zerolog.Logger
	every       time.Duration
	now         func() time.Time
	name, unit  string
	total, done int64
	start, last time.Time
}

// Add counts n more units and logs a line when an interval has passed
// since the last one.
func (b *logBar) Add(n int64) {
	b.done += n
	if t := b.now(); t.Sub(b.last) >= b.every {
		b.line(t)
		b.last = t
	}
}

// Done does nothing: the stage's own "stage done" line follows.
func (b *logBar) Done() {}

// line logs the progress as of now.
func (b *logBar) line(now time.Time) {
	elapsed := now.Sub(b.start)
	rate := float64(b.done) / elapsed.Seconds()
	ev := b.log.Info().Str("stage", b.name).Int64("done", b.done)
	if b.total > 0 {
		ev = ev.Int64("total", b.total)
	}
	ev = ev.Str("unit", b.unit).Float64("rate", round3(rate))
	if b.total > 0 && rate > 0 && b.done <= b.total {
		eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		ev = ev.Str("eta", eta.Round(time.Second).String())
	}
	ev.Str("elapsed", elapsed.Round(time.Second).String()).Msg("progress")
}

// round3 keeps a readable number of decimals: integers from 100, one
// decimal from 1, three below.
func round3(x float64) float64 {
	switch {
	case x >= 100:
		return math.Round(x)
	case x >= 1:
		return math.Round(x*10) / 10
	}
	return math.Round(x*1000) / 1000
}
