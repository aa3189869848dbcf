// Package report draws the metrics of one or more runs of a lake into one
// self-contained interactive HTML page, or the key charts into PNG files.
//
// Everything is read through the sql package's engine, from the views
// rljob sql sees: metrics (every name a job logged), scored (rollouts
// joined with rewards) for the training reward, the curriculum and the
// samples, rollouts for the x axes, calls and steps for the run table.
// Build queries and assembles a Report: Charts (the key charts, drawn with
// gonum.org/v1/plot by Draw, written by WritePNGs) and, for the page,
// Panels over every metric's Series, the runs' Axes, the RunTable and the
// Samples. WriteHTML writes the page: the Report as JSON, drawn in the
// browser by uPlot (vendored from npm, embedded with its licence) and
// assets/app.js. See docs/report.md.
package report

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"image/color"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	rsql "github.com/rljob/rljob/sql"
)

// Series is one curve: a run's values of one quantity against step (or
// checkpoint step for eval charts). X is increasing.
type Series struct {
	Run  string    `json:"run"`
	Name string    `json:"name"` // the metric or quantity, e.g. actor/entropy
	X    []float64 `json:"x"`
	Y    []float64 `json:"y"`
}

// Chart kinds: curves against step (KindLines, the default), or a heat map
// of one run whose series are its rows (KindHeatmap).
const (
	KindLines   = ""
	KindHeatmap = "heatmap"
)

// Chart is one chart of the report. Notes say which runs have no data for
// it; PNG holds the drawn image after Draw.
type Chart struct {
	ID     string `json:"id"`
	Kind   string `json:"kind,omitempty"`
	Title  string `json:"title"`
	XLabel string `json:"xlabel"`
	YLabel string `json:"ylabel"`
	// Metrics are the metrics a metric chart draws (legends name the
	// metric when there are several).
	Metrics []string `json:"metrics,omitempty"`
	Series  []Series `json:"series"`
	Notes   []string `json:"notes,omitempty"`
	PNG     []byte   `json:"-"`
}

// Report is every chart for a list of runs of one lake: Charts for the
// PNG output, and for the interactive page (whose embedded JSON is this
// struct) the panels, the series they draw (run → name → line), the runs'
// x axes, the run table and the samples. Charts are left out of the JSON:
// the panels draw the same series.
type Report struct {
	Lake      string    `json:"lake"`
	Runs      []string  `json:"runs"`
	Generated time.Time `json:"generated"`
	Message   string    `json:"message,omitempty"`
	Colors    []string  `json:"colors"` // per run, in Runs order
	// RefreshS, when set, makes the page reload itself every RefreshS
	// seconds (rljob report --watch rewrites the file).
	RefreshS int                         `json:"refresh_s,omitempty"`
	Charts   []*Chart                    `json:"-"`
	Panels   []*Panel                    `json:"panels"`
	Series   map[string]map[string]*Line `json:"series"`
	Axes     map[string]*Axes            `json:"axes"`
	RunTable []*RunInfo                  `json:"run_table"`
	Varied   []string                    `json:"varied,omitempty"`
	Samples  []Sample                    `json:"samples"`
}

// UnknownRunError is returned by Build for a requested run that has no
// metrics and no rollouts in the lake.
type UnknownRunError struct {
	Run   string
	Lake  string
	Known []string // runs that do have data
}

func (e *UnknownRunError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("run %q has no metrics and no rollouts in lake %s (runs with data: %s)", e.Run, e.Lake, known)
}

// metricChart is a chart of one or more metrics of the metrics table, one
// series per (run, metric).
type metricChart struct {
	id, title, ylabel string
	metrics           []string
}

// metricCharts are the per-step training charts, in report order (after the
// reward chart). The names are those the train stage commits
// (jobs/rl/train.go) and grpo.sql logs.
var metricCharts = []metricChart{
	{"entropy", "Policy entropy", "nats per token", []string{"actor/entropy"}},
	{"kl", "KL divergence", "KL", []string{"actor/kl_loss", "actor/ppo_kl"}},
	{"clipfrac", "PPO clip fraction", "fraction of tokens", []string{"actor/pg_clipfrac", "actor/pg_clipfrac_lower"}},
	{"grad_norm", "Gradient norm", "global L2 norm", []string{"actor/grad_norm"}},
	{"response_length", "Response length", "tokens", []string{"response_length/mean"}},
	{"groups_kept", "Groups kept by dynamic sampling", "fraction of prompt groups", []string{"train/groups_kept"}},
}

// rewardFallbacks are the metrics the reward chart uses for a run without
// train-tagged scored rows.
var rewardFallbacks = []string{"train/reward_mean", "critic/score/mean"}

// Build queries eng for the charts of runs (at least one, in legend order):
// the PNG charts (Charts) and the interactive page's panels, series, x axes,
// run table and samples.
// The samples table holds, besides each run's first and latest step, every
// train sample of the prompts with ids prompts (at most MaxChosenSamples).
func Build(ctx context.Context, eng *rsql.Engine, runs []string, prompts ...string) (*Report, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("report: no run given")
	}
	if err := checkRuns(ctx, eng, runs); err != nil {
		return nil, err
	}
	metrics, err := loadMetrics(ctx, eng, runs)
	if err != nil {
		return nil, err
	}
	trained, notes, err := trainedScored(ctx, eng, runs)
	if err != nil {
		return nil, err
	}
	reward, err := loadScoredReward(ctx, eng, trained, runs)
	if err != nil {
		return nil, err
	}
	cur, err := curriculumCharts(ctx, eng, trained, runs)
	if err != nil {
		return nil, err
	}
	r := assemble(eng.Lake(), runs, metrics, reward, cur)
	for _, c := range r.Charts {
		if c.ID == "reward" {
			c.Notes = append(c.Notes, notes...)
		}
	}
	if err := r.loadExtras(ctx, eng, metrics, prompts); err != nil {
		return nil, err
	}
	return r, nil
}

// assemble builds the charts and panels of runs from their metrics, the
// scored train reward per step and the curriculum heat maps.
func assemble(lake string, runs []string, md metricData, reward map[string][]point, cur []*Chart) *Report {
	r := MessageReport(lake, runs, "")
	r.Charts = append(r.Charts, rewardChart(runs, md, reward))
	for _, mc := range metricCharts {
		r.Charts = append(r.Charts, mc.build(runs, md))
	}
	r.Charts = append(r.Charts, evalCharts(runs, md)...)
	r.Charts = append(r.Charts, cur...)
	r.buildPanels(md, reward)
	return r
}

// MessageReport is a report without data that says msg: the page written
// for an empty lake or an unknown run.
func MessageReport(lake string, runs []string, msg string) *Report {
	r := &Report{Lake: lake, Runs: slices.Clone(runs), Generated: time.Now().UTC(), Message: msg,
		Series: map[string]map[string]*Line{}, Axes: map[string]*Axes{}}
	for i := range runs {
		c := color.RGBAModel.Convert(runColors[i%len(runColors)]).(color.RGBA)
		r.Colors = append(r.Colors, fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
	}
	return r
}

// runList renders runs as a SQL list of string literals.
func runList(runs []string) string {
	q := make([]string, len(runs))
	for i, r := range runs {
		q[i] = rsql.QuoteString(r)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// query runs a query on eng's connection and calls scan for each row.
func query(ctx context.Context, eng *rsql.Engine, what, q string, scan func(*stdsql.Rows) error) error {
	rows, err := eng.Conn().QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("report: query %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("report: read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("report: read %s: %w", what, err)
	}
	return nil
}

// checkRuns returns an *UnknownRunError for the first run with neither
// metrics nor rollouts.
func checkRuns(ctx context.Context, eng *rsql.Engine, runs []string) error {
	var known []string
	err := query(ctx, eng, "runs", `SELECT DISTINCT run FROM (SELECT run FROM metrics UNION ALL SELECT run FROM rollouts) ORDER BY run`,
		func(r *stdsql.Rows) error {
			var s string
			err := r.Scan(&s)
			known = append(known, s)
			return err
		})
	if err != nil {
		return err
	}
	for _, run := range runs {
		if !slices.Contains(known, run) {
			return &UnknownRunError{Run: run, Lake: eng.Lake(), Known: known}
		}
	}
	return nil
}

// point is one (step, value) of a metric.
type point struct{ x, y float64 }

// metricData is run → metric name → points in step order.
type metricData map[string]map[string][]point

// loadMetrics reads every finite metric value of runs, averaged over the
// calls of a step that log the same name.
func loadMetrics(ctx context.Context, eng *rsql.Engine, runs []string) (metricData, error) {
	md := metricData{}
	q := `SELECT run, name, step, avg(value) FROM metrics
WHERE run IN ` + runList(runs) + ` AND name IS NOT NULL AND value IS NOT NULL AND isfinite(value)
GROUP BY run, name, step ORDER BY run, name, step`
	err := query(ctx, eng, "metrics", q, func(r *stdsql.Rows) error {
		var run, name string
		var step int64
		var v float64
		if err := r.Scan(&run, &name, &step, &v); err != nil {
			return err
		}
		if md[run] == nil {
			md[run] = map[string][]point{}
		}
		md[run][name] = append(md[run][name], point{float64(step), v})
		return nil
	})
	return md, err
}

func seriesOf(run, name string, pts []point) Series {
	s := Series{Run: run, Name: name, X: make([]float64, len(pts)), Y: make([]float64, len(pts))}
	for i, p := range pts {
		s.X[i], s.Y[i] = p.x, p.y
	}
	return s
}

func (mc metricChart) build(runs []string, md metricData) *Chart {
	c := &Chart{ID: mc.id, Title: mc.title, XLabel: "step", YLabel: mc.ylabel, Metrics: slices.Clone(mc.metrics)}
	for _, run := range runs {
		n := 0
		for _, m := range mc.metrics {
			if pts := md[run][m]; len(pts) > 0 {
				c.Series = append(c.Series, seriesOf(run, m, pts))
				n++
			}
		}
		if n == 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("no data for run %s (no %s in metrics)", run, strings.Join(mc.metrics, " or ")))
		}
	}
	return c
}

// loadScoredReward reads the mean reward of each step's train-tagged
// rollouts (of src, trainedScored's rows, tag = 'train') per run.
func loadScoredReward(ctx context.Context, eng *rsql.Engine, src string, runs []string) (map[string][]point, error) {
	fromScored := map[string][]point{}
	q := `SELECT run, step, avg(reward) FROM ` + src + `
WHERE run IN ` + runList(runs) + ` AND tag = 'train' AND reward IS NOT NULL AND isfinite(reward)
GROUP BY run, step ORDER BY run, step`
	err := query(ctx, eng, "train reward", q, func(r *stdsql.Rows) error {
		var run string
		var step int64
		var v float64
		if err := r.Scan(&run, &step, &v); err != nil {
			return err
		}
		fromScored[run] = append(fromScored[run], point{float64(step), v})
		return nil
	})
	return fromScored, err
}

// rewardChart is the mean reward of each step's train-tagged rollouts
// (fromScored), or for a run without those the first of rewardFallbacks it
// logged.
func rewardChart(runs []string, md metricData, fromScored map[string][]point) *Chart {
	c := &Chart{ID: "reward", Title: "Training reward (mean over the step's train rollouts)", XLabel: "step", YLabel: "reward"}
	for _, run := range runs {
		if pts := fromScored[run]; len(pts) > 0 {
			c.Series = append(c.Series, seriesOf(run, "reward (scored)", pts))
			continue
		}
		found := false
		for _, m := range rewardFallbacks {
			if pts := md[run][m]; len(pts) > 0 {
				c.Series = append(c.Series, seriesOf(run, m, pts))
				found = true
				break
			}
		}
		if !found {
			c.Notes = append(c.Notes, fmt.Sprintf("no data for run %s (no train-tagged rows in scored, no %s in metrics)", run, strings.Join(rewardFallbacks, " or ")))
		}
	}
	return c
}

// evalName matches the metrics an eval job logs: val/<task>/<metric>.
var evalName = regexp.MustCompile(`^val/(.+)/([^/]+)$`)

// evalCharts draws one chart per eval task found (val/<task>/<metric>), one
// series per run and metric against the evaluated checkpoint
// (val/<task>/policy_step of the same step, else the step). With no eval
// metric in any run, one empty "Eval pass@k" chart says so.
func evalCharts(runs []string, md metricData) []*Chart {
	tasks := map[string]bool{}
	for _, run := range runs {
		for name := range md[run] {
			if m := evalName.FindStringSubmatch(name); m != nil && m[2] != "policy_step" {
				tasks[m[1]] = true
			}
		}
	}
	if len(tasks) == 0 {
		c := &Chart{ID: "eval", Title: "Eval pass@k per checkpoint", XLabel: "checkpoint step", YLabel: "pass@k"}
		for _, run := range runs {
			c.Notes = append(c.Notes, fmt.Sprintf("no data for run %s (no val/<task>/pass@k in metrics)", run))
		}
		return []*Chart{c}
	}
	var names []string
	for t := range tasks {
		names = append(names, t)
	}
	sort.Strings(names)
	var charts []*Chart
	for _, task := range names {
		c := &Chart{ID: "eval-" + slug(task), Title: "Eval " + task + ": pass@k per checkpoint", XLabel: "checkpoint step", YLabel: "score"}
		prefix := "val/" + task + "/"
		for _, run := range runs {
			ckpt := map[float64]float64{}
			for _, p := range md[run][prefix+"policy_step"] {
				ckpt[p.x] = p.y
			}
			var ms []string
			for name := range md[run] {
				if m := evalName.FindStringSubmatch(name); m != nil && m[1] == task && m[2] != "policy_step" {
					ms = append(ms, m[2])
				}
			}
			sortEvalMetrics(ms)
			for _, m := range ms {
				var pts []point
				for _, p := range md[run][prefix+m] {
					x := p.x
					if k, ok := ckpt[p.x]; ok {
						x = k
					}
					pts = append(pts, point{x, p.y})
				}
				sort.SliceStable(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
				c.Series = append(c.Series, seriesOf(run, m, pts))
			}
			if len(ms) == 0 {
				c.Notes = append(c.Notes, fmt.Sprintf("no data for run %s (no %s* in metrics)", run, prefix))
			}
		}
		charts = append(charts, c)
	}
	return charts
}

// sortEvalMetrics orders pass@1, pass@4, pass@16 by k, then the rest
// (greedy_acc, mean@16) by name.
func sortEvalMetrics(ms []string) {
	key := func(s string) (int, int, string) {
		if k, ok := strings.CutPrefix(s, "pass@"); ok {
			if n, err := strconv.Atoi(k); err == nil {
				return 0, n, s
			}
		}
		return 1, 0, s
	}
	sort.Slice(ms, func(i, j int) bool {
		a1, a2, a3 := key(ms[i])
		b1, b2, b3 := key(ms[j])
		if a1 != b1 {
			return a1 < b1
		}
		if a2 != b2 {
			return a2 < b2
		}
		return a3 < b3
	})
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	s = strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if s == "" {
		return "task"
	}
	return s
}
