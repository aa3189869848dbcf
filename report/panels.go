package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Panel kinds of the interactive page: curves against an x axis
// (PanelLines), pass@k against k per checkpoint (PanelPassK), a drawn image
// (PanelImage, the curriculum heat maps).
const (
	PanelLines = "lines"
	PanelPassK = "passk"
	PanelImage = "image"
)

// GroupKey is the page section of the built-in charts; GroupEval that of the
// eval metrics (val/<task>/...).
const (
	GroupKey  = "key charts"
	GroupEval = "eval"
)

// Panel is one chart (or one collapsed line) of the interactive page. A
// lines panel draws the series Metrics of every run from Report.Series
// against the step (eval metrics against the checkpoint step); Flat, when
// set, replaces the chart by that one-line summary (no metric varies).
type Panel struct {
	ID      string       `json:"id"`
	Group   string       `json:"group"`
	Title   string       `json:"title"`
	YLabel  string       `json:"ylabel,omitempty"`
	Kind    string       `json:"kind"`
	Metrics []string     `json:"metrics,omitempty"`
	FirstOf bool         `json:"first_of,omitempty"` // per run, only the first of Metrics it has
	Flat    string       `json:"flat,omitempty"`
	PassK   []PassKCurve `json:"passk,omitempty"`
	Image   string       `json:"image,omitempty"` // data: URL of a PNG
	Notes   []string     `json:"notes,omitempty"`
}

// PassKCurve is pass@k against k of one run's checkpoint.
type PassKCurve struct {
	Run  string    `json:"run"`
	Ckpt float64   `json:"ckpt"`
	K    []float64 `json:"k"`
	Y    []float64 `json:"y"`
}

// Line is one metric series of the page: X the step (the checkpoint step
// for eval metrics), downsampled to at most MaxPoints points keeping each
// bucket's minimum and maximum; N is the number of points before that.
type Line struct {
	X []float64 `json:"x"`
	Y []float64 `json:"y"`
	N int       `json:"n"`
}

// MaxPoints bounds the points of one series in the page: a longer series
// keeps, per bucket of consecutive steps, its first, minimum and maximum
// points, so spikes survive and 10,000 steps × 50 metrics stay a few MB.
const MaxPoints = 1200

// RewardSeries is the name of the reward curve computed from scored (mean
// reward of the step's train rollouts), which no metric of the lake holds.
const RewardSeries = "scored/reward_mean"

// downsample returns pts when short enough, else per bucket of
// ceil(3·len/MaxPoints) points its first, minimum and maximum point in step
// order (each once).
func downsample(pts []point) []point {
	if len(pts) <= MaxPoints {
		return pts
	}
	size := (3*len(pts) + MaxPoints - 1) / MaxPoints
	out := make([]point, 0, MaxPoints)
	for lo := 0; lo < len(pts); lo += size {
		hi := min(lo+size, len(pts))
		mn, mx := lo, lo
		for i := lo; i < hi; i++ {
			if pts[i].y < pts[mn].y {
				mn = i
			}
			if pts[i].y > pts[mx].y {
				mx = i
			}
		}
		idx := []int{lo, mn, mx}
		sort.Ints(idx)
		for j, i := range idx {
			if j == 0 || i != idx[j-1] {
				out = append(out, pts[i])
			}
		}
	}
	if out[len(out)-1] != pts[len(pts)-1] {
		out = append(out, pts[len(pts)-1])
	}
	return out
}

func lineOf(pts []point) *Line {
	d := downsample(pts)
	l := &Line{X: make([]float64, len(d)), Y: make([]float64, len(d)), N: len(pts)}
	for i, p := range d {
		l.X[i], l.Y[i] = p.x, p.y
	}
	return l
}

// groupOf is the section of a metric: val/... is eval, else the text before
// the first '/', or "other" for a name without one.
func groupOf(name string) string {
	if strings.HasPrefix(name, "val/") {
		return GroupEval
	}
	if i := strings.IndexByte(name, '/'); i > 0 {
		return name[:i]
	}
	return "other"
}

// groupRank orders the sections: key charts, eval, the stages' prefixes,
// then the rest by name.
var groupRank = map[string]int{GroupKey: 0, GroupEval: 1, "actor": 2, "critic": 3, "train": 4, "response_length": 5, "timing_s": 6}

func groupLess(a, b string) bool {
	ra, oka := groupRank[a]
	rb, okb := groupRank[b]
	switch {
	case oka && okb:
		return ra < rb
	case oka != okb:
		return oka
	}
	return a < b
}

// flatSummary returns the one-line summary of metrics that hold one value
// at every point of every run ("" when some value differs or there is no
// data).
// With firstOf, a run counts only the first of metrics it has.
func flatSummary(series map[string]map[string]*Line, runs, metrics []string, firstOf bool) string {
	var v float64
	n, counts, names := 0, []string{}, map[string]bool{}
	for _, run := range runs {
		most := 0
		for _, m := range metrics {
			l := series[run][m]
			if l == nil || (firstOf && most > 0) {
				continue
			}
			names[m] = true
			for _, y := range l.Y {
				if n > 0 && y != v {
					return ""
				}
				v = y
				n++
			}
			most = max(most, l.N)
		}
		if most > 0 {
			counts = append(counts, fmt.Sprintf("%s %d points", run, most))
		}
	}
	if n == 0 {
		return ""
	}
	var shown []string
	for _, m := range metrics {
		if names[m] {
			shown = append(shown, m)
		}
	}
	return fmt.Sprintf("%s = %s at every point (%s)", strings.Join(shown, ", "), fmtNum(v), strings.Join(counts, ", "))
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.6g", v)
}
