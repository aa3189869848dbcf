package report

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// Scale of the size test: a 10,000-step run logging 50 metrics.
const (
	scaleSteps   = 10000
	scaleMetrics = 50
)

// scaleReport is the report of one synthetic run of scaleSteps steps with
// scaleMetrics noisy metrics (one spike each, at step 5000 + i), rollouts
// and wall time on every step, built without a lake (assemble).
func scaleReport() *Report {
	rng := rand.New(rand.NewSource(1))
	md := metricData{"big": {}}
	prefixes := []string{"actor", "critic", "train", "timing_s", "replay"}
	for i := 0; i < scaleMetrics; i++ {
		name := fmt.Sprintf("%s/m%02d", prefixes[i%len(prefixes)], i)
		if i == 0 {
			name = "actor/entropy"
		}
		pts := make([]point, scaleSteps)
		for s := range pts {
			pts[s] = point{float64(s), math.Sin(float64(s)/500) + rng.NormFloat64()*0.1}
		}
		pts[5000+i].y = 100 // a spike downsampling must keep
		md["big"][name] = pts
	}
	reward := map[string][]point{"big": make([]point, scaleSteps)}
	for s := range reward["big"] {
		reward["big"][s] = point{float64(s), float64(s) / scaleSteps}
	}
	r := assemble("/lake", []string{"big"}, md, reward, nil)
	ax := &Axes{}
	for s := 0; s < scaleSteps; s++ {
		ax.Step = append(ax.Step, float64(s))
		ax.Rollouts = append(ax.Rollouts, float64(64*(s+1)))
		ax.Tokens = append(ax.Tokens, float64(64*300*(s+1)))
		ax.WallS = append(ax.WallS, float64(12*(s+1)))
	}
	r.Axes = map[string]*Axes{"big": ax}
	r.RunTable = []*RunInfo{{Run: "big", Steps: scaleSteps, LastStep: scaleSteps - 1, Key: r.keyMetrics("big")}}
	return r
}

// TestPageSizeAtScale: the page of a 10,000-step run with 50 metrics stays
// under 10 MB, every series is downsampled to about MaxPoints points, and
// each metric's spike (its maximum) and its last point survive.
func TestPageSizeAtScale(t *testing.T) {
	r := scaleReport()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	size := buf.Len()
	t.Logf("page of %d steps × %d metrics: %.2f MB, %d panels", scaleSteps, scaleMetrics, float64(size)/1e6, len(r.Panels))
	if size > 10<<20 {
		t.Errorf("page is %d bytes, want under 10 MB", size)
	}
	if len(r.Panels) < scaleMetrics {
		t.Errorf("%d panels for %d metrics", len(r.Panels), scaleMetrics)
	}
	for name, l := range r.Series["big"] {
		if l.N != scaleSteps || len(l.X) > MaxPoints+4 || len(l.X) < MaxPoints/2 {
			t.Errorf("%s: %d points of %d", name, len(l.X), l.N)
		}
		if l.X[len(l.X)-1] != scaleSteps-1 {
			t.Errorf("%s: last point %v dropped", name, l.X[len(l.X)-1])
		}
		if name == RewardSeries {
			continue
		}
		kept := false
		for _, y := range l.Y {
			kept = kept || y == 100
		}
		if !kept {
			t.Errorf("%s: the spike to 100 was downsampled away", name)
		}
	}
}

// TestDownsampleKeepsExtremes: per bucket the first, minimum and maximum
// points stay, in step order, and short series are untouched.
func TestDownsampleKeepsExtremes(t *testing.T) {
	short := []point{{0, 1}, {1, 2}}
	if got := downsample(short); len(got) != 2 {
		t.Errorf("short series changed: %v", got)
	}
	var pts []point
	for s := 0; s < 10*MaxPoints; s++ {
		pts = append(pts, point{float64(s), 0})
	}
	pts[777].y, pts[778].y = -5, 7
	got := downsample(pts)
	var lo, hi bool
	for i, p := range got {
		if i > 0 && p.x <= got[i-1].x {
			t.Fatalf("x not increasing at %d: %v then %v", i, got[i-1], p)
		}
		lo, hi = lo || p.y == -5, hi || p.y == 7
	}
	if !lo || !hi || len(got) > MaxPoints+1 {
		t.Errorf("min kept %v, max kept %v, %d points", lo, hi, len(got))
	}
}

// BenchmarkWriteHTMLAtScale times building and writing the page of
// scaleReport (go test -bench WriteHTMLAtScale -run ^$ ./report).
func BenchmarkWriteHTMLAtScale(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r := scaleReport()
		var buf bytes.Buffer
		if err := WriteHTML(&buf, r); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(buf.Len())/1e6, "MB")
	}
}
