package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const input = `recipe,rollouts,pass1,pass16,extra
baseline,0,0.397,0.858,x
baseline,4096,0.5,0.9,x
baseline,2048,0.45,0.88,x
dapo,0,0.397,0.858,x
dapo,2100.5,0.47,0.89,x
`

func TestSeriesEqualInput(t *testing.T) {
	c, err := readCurves(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	r := build(c)
	if !reflect.DeepEqual(r.Runs, []string{"baseline", "dapo"}) {
		t.Fatalf("runs %v, want baseline, dapo (first-seen order)", r.Runs)
	}
	if len(r.Charts) != 2 || r.Charts[0].ID != "pass1_vs_rollouts" || r.Charts[1].ID != "pass16_vs_rollouts" {
		t.Fatalf("charts %+v", r.Charts)
	}
	want := map[string]map[string][2][]float64{ // chart -> recipe -> x, y (sorted by x)
		"pass1_vs_rollouts": {
			"baseline": {{0, 2048, 4096}, {0.397, 0.45, 0.5}},
			"dapo":     {{0, 2100.5}, {0.397, 0.47}},
		},
		"pass16_vs_rollouts": {
			"baseline": {{0, 2048, 4096}, {0.858, 0.88, 0.9}},
			"dapo":     {{0, 2100.5}, {0.858, 0.89}},
		},
	}
	for _, ch := range r.Charts {
		if len(ch.Series) != 2 {
			t.Fatalf("%s: %d series, want 2", ch.ID, len(ch.Series))
		}
		for _, s := range ch.Series {
			w := want[ch.ID][s.Run]
			if !reflect.DeepEqual(s.X, w[0]) || !reflect.DeepEqual(s.Y, w[1]) {
				t.Errorf("%s %s: x %v y %v, want x %v y %v", ch.ID, s.Run, s.X, s.Y, w[0], w[1])
			}
		}
	}
}

func TestWritesPNGs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts")
	paths, err := run(strings.NewReader(input), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "01-pass1_vs_rollouts.png"), filepath.Join(dir, "02-pass16_vs_rollouts.png")}
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

func TestBadInput(t *testing.T) {
	for _, in := range []string{
		"",
		"recipe,rollouts,pass1\nbaseline,0,0.5\n",
		"recipe,rollouts,pass1,pass16\n",
		"recipe,rollouts,pass1,pass16\nbaseline,x,0.5,0.9\n",
	} {
		if _, err := readCurves(strings.NewReader(in)); err == nil {
			t.Errorf("readCurves(%q): no error", in)
		}
	}
}
