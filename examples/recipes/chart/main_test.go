package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rljob/rljob/examples/recipes/stats"
)

// Two seeds of two arms; the start sft as eval 0 of both arms.
const curvesIn = `arm,seed,eval,rollouts,pass1,pass16
sft,1,0,0,0.4,0.8
sft,2,0,0,0.2,0.6
baseline,1,0,0,0.4,0.8
baseline,1,1,2048,0.5,0.9
baseline,2,0,0,0.2,0.6
baseline,2,1,2048,0.3,0.7
dapo,1,0,0,0.4,0.8
dapo,1,1,2100,0.6,0.9
dapo,2,0,0,0.2,0.6
dapo,2,1,2200,0.2,0.8
`

const perseedIn = `arm,seed,metric,value
sft,1,pass@1@512,0.4
sft,2,pass@1@512,0.2
sft,1,pass@2@512,0.6
sft,2,pass@2@512,0.5
baseline,1,pass@1,0.5
baseline,2,pass@1,0.3
baseline,1,pass@1@512,0.5
baseline,2,pass@1@512,0.3
baseline,1,pass@2@512,0.6
baseline,2,pass@2@512,0.6
`

func inputs(t *testing.T) ([]evalRow, *stats.PerSeed) {
	t.Helper()
	rows, err := readCurves(strings.NewReader(curvesIn))
	if err != nil {
		t.Fatal(err)
	}
	p, err := stats.ReadPerSeed(strings.NewReader(perseedIn))
	if err != nil {
		t.Fatal(err)
	}
	return rows, p
}

// With two seeds a and b, the bootstrap means are a, (a+b)/2 and b with
// probabilities 1/4, 1/2, 1/4, so the band is [min, max] (stats' test).
func TestBands(t *testing.T) {
	rows, p := inputs(t)
	charts, err := buildCharts(rows, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 3 || charts[0].id != "pass1_vs_rollouts" || charts[1].id != "pass16_vs_rollouts" || charts[2].id != "passk_vs_k" || !charts[2].log2x {
		t.Fatalf("charts %+v", charts)
	}
	want := []band{ // pass@1: the start is not a line; x is the mean rollouts
		{arm: "baseline", x: []float64{0, 2048}, y: []float64{0.3, 0.4}, lo: []float64{0.2, 0.3}, hi: []float64{0.4, 0.5}},
		{arm: "dapo", x: []float64{0, 2150}, y: []float64{0.3, 0.4}, lo: []float64{0.2, 0.2}, hi: []float64{0.4, 0.6}},
	}
	checkBands(t, "pass@1", charts[0].bands, want)
	wantK := []band{
		{arm: "sft", x: []float64{1, 2}, y: []float64{0.3, 0.55}, lo: []float64{0.2, 0.5}, hi: []float64{0.4, 0.6}},
		{arm: "baseline", x: []float64{1, 2}, y: []float64{0.4, 0.6}, lo: []float64{0.3, 0.6}, hi: []float64{0.5, 0.6}},
	}
	checkBands(t, "pass@k", charts[2].bands, wantK)
	only, err := buildCharts(rows, p, []string{"baseline"})
	if err != nil {
		t.Fatal(err)
	}
	checkBands(t, "pass@k of -passk-arms baseline", only[2].bands, wantK[1:])
}

func checkBands(t *testing.T, what string, got, want []band) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bands, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.arm != w.arm || !closeAll(g.x, w.x) || !closeAll(g.y, w.y) || !closeAll(g.lo, w.lo) || !closeAll(g.hi, w.hi) {
			t.Errorf("%s band %d: %+v, want %+v", what, i, g, w)
		}
	}
}

func closeAll(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-12 || d < -1e-12 {
			return false
		}
	}
	return true
}

func TestWritesPNGs(t *testing.T) {
	dir := t.TempDir()
	cp, pp := filepath.Join(dir, "curves.csv"), filepath.Join(dir, "perseed.csv")
	if err := os.WriteFile(cp, []byte(curvesIn), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pp, []byte(perseedIn), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "charts")
	paths, err := run(pp, cp, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(out, "01-pass1_vs_rollouts.png"), filepath.Join(out, "02-pass16_vs_rollouts.png"), filepath.Join(out, "03-passk_vs_k.png")}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("wrote %v, want %v", paths, want)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if w := img.Bounds().Dx(); w < 500 {
			t.Errorf("%s: %d px wide", p, w)
		}
	}
}

func TestBadCurves(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "read header"},
		{"arm,seed,eval,rollouts,pass1\n", "line 1: header"},
		{"arm,seed,eval,rollouts,pass1,pass16\n", "no rows"},
		{"arm,seed,eval,rollouts,pass1,pass16\nb,1,x,0,0.5,0.9\n", "line 2: eval"},
		{"arm,seed,eval,rollouts,pass1,pass16\nb,1,0,0,0.5,y\n", "line 2: pass16"},
	} {
		if _, err := readCurves(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("readCurves(%q): error %v, want one with %q", c.in, err, c.want)
		}
	}
}
