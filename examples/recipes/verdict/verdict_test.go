package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/examples/recipes/stats"
)

// perseed builds a perseed.csv: arm A's and B's pass@1 per seed.
func perseed(a, b []float64) *stats.PerSeed {
	var s strings.Builder
	s.WriteString("arm,seed,metric,value\n")
	for i, v := range a {
		fmt.Fprintf(&s, "A,%d,pass@1,%g\n", i+1, v)
	}
	for i, v := range b {
		fmt.Fprintf(&s, "B,%d,pass@1,%g\n", i+1, v)
	}
	p, err := stats.ReadPerSeed(strings.NewReader(s.String()))
	if err != nil {
		panic(err)
	}
	return p
}

func TestRule(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		n, dir int
		want   string
	}{
		{0.01, 0.05, 8, 1, Reproduced},
		{-0.05, -0.01, 8, 1, Contradicted},
		{-0.01, 0.05, 8, 1, Inconclusive},
		{0, 0.05, 8, 1, Inconclusive}, // an end at 0 does not exclude 0
		{-0.05, -0.01, 8, -1, Reproduced},
		{0.01, 0.05, 8, -1, Contradicted},
		{0.01, 0.05, 7, 1, FewSeeds}, // a clear interval, but 7 seeds: no verdict
		{0.01, 0.05, 3, -1, FewSeeds},
	} {
		if got := rule(stats.Interval{Lo: c.lo, Hi: c.hi, N: c.n}, c.dir); got != c.want {
			t.Errorf("rule([%g, %g], n %d, dir %d) = %q, want %q", c.lo, c.hi, c.n, c.dir, got, c.want)
		}
	}
}

// One case per verdict on hand-made seeds; the differences A − B are given,
// so the interval's ends can be checked against what they must bracket.
func TestMeasureVerdicts(t *testing.T) {
	base := []float64{0.30, 0.40, 0.50, 0.35, 0.45, 0.25, 0.55, 0.60}
	add := func(d []float64) []float64 {
		out := make([]float64, len(base))
		for i := range base {
			out[i] = base[i] + d[i]
		}
		return out
	}
	for _, c := range []struct {
		name string
		d    []float64 // A − B per seed
		dir  int
		want string
	}{
		// every difference in [+0.02, +0.06]: every resample mean is too
		{"reproduced", []float64{0.02, 0.03, 0.04, 0.05, 0.06, 0.03, 0.04, 0.05}, 1, Reproduced},
		{"contradicted", []float64{-0.02, -0.03, -0.04, -0.05, -0.06, -0.03, -0.04, -0.05}, 1, Contradicted},
		{"reproduced, direction -", []float64{-0.02, -0.03, -0.04, -0.05, -0.06, -0.03, -0.04, -0.05}, -1, Reproduced},
		// ±0.05 alternating: mean 0, interval [−0.0375, +0.0375] (see stats' ±1 test)
		{"inconclusive", []float64{0.05, -0.05, 0.05, -0.05, 0.05, -0.05, 0.05, -0.05}, 1, Inconclusive},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := measure(perseed(add(c.d), base), finding{ID: "F", Metric: "pass@1", A: "A", B: "B", Dir: c.dir})
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != c.want {
				t.Fatalf("verdict %q, want %q (interval %+v)", r.Verdict, c.want, r.IV)
			}
			if r.IV.N != 8 || !near(r.IV.Mean, stats.Mean(c.d)) {
				t.Errorf("n %d mean %g, want 8 and %g", r.IV.N, r.IV.Mean, stats.Mean(c.d))
			}
			lo, hi := minMax(c.d)
			if r.IV.Lo < lo-1e-12 || r.IV.Hi > hi+1e-12 || r.IV.Lo > r.IV.Mean || r.IV.Hi < r.IV.Mean {
				t.Errorf("interval [%g, %g] outside [%g, %g] or not around the mean %g", r.IV.Lo, r.IV.Hi, lo, hi, r.IV.Mean)
			}
		})
	}
	t.Run("inconclusive ends", func(t *testing.T) {
		d := []float64{0.05, -0.05, 0.05, -0.05, 0.05, -0.05, 0.05, -0.05}
		r, _ := measure(perseed(add(d), base), finding{Metric: "pass@1", A: "A", B: "B", Dir: 1})
		if !near(r.IV.Lo, -0.0375) || !near(r.IV.Hi, 0.0375) {
			t.Errorf("interval [%g, %g], want [-0.0375, 0.0375]", r.IV.Lo, r.IV.Hi)
		}
	})
	t.Run("fewer than 8 seeds", func(t *testing.T) {
		// A has 8 seeds, B only the first 7: 7 pairs, a clear effect, no verdict
		d := []float64{0.02, 0.03, 0.04, 0.05, 0.06, 0.03, 0.04, 0.05}
		r, err := measure(perseed(add(d), base[:7]), finding{Metric: "pass@1", A: "A", B: "B", Dir: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != FewSeeds || r.IV.N != 7 || len(r.Seeds) != 7 {
			t.Fatalf("verdict %q with %d seeds, want %q with 7", r.Verdict, r.IV.N, FewSeeds)
		}
	})
	t.Run("arm not run", func(t *testing.T) {
		r, err := measure(perseed(base, base), finding{Metric: "pass@1", A: "A", B: "C", Dir: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != "not run" || !strings.Contains(r.Missing, "arm C") {
			t.Fatalf("verdict %q (%s), want not run naming arm C", r.Verdict, r.Missing)
		}
	})
}

func TestReadSpecErrors(t *testing.T) {
	head := strings.Join(specHeader, ",") + "\n"
	for _, c := range []struct{ in, want string }{
		{"id,paper\n", "line 1: header"},
		{head + "F1,P,1,c,pass@1,a,b,>\n", "line 2: direction \">\""},
		{head + "F1,P,1,c,pass@1,a,a,+\n", "line 2: arm A and arm B are both a"},
		{head + "F1,P,1,c,pass@1,a,b,+\nF1,P,1,c,pass@1,a,b,+\n", "line 3: finding F1 given twice"},
		{head + "F1,P,,c,pass@1,a,b,+\n", "line 2: column arxiv is empty"},
		{head, "no findings"},
	} {
		_, err := readSpec(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.in, err, c.want)
		}
	}
	if _, err := readSpecFile("../findings.csv"); err != nil {
		t.Errorf("the committed spec: %v", err)
	}
}

func TestReplaceBlock(t *testing.T) {
	doc := "a\n" + BeginMarker + "\nold\nlines\n" + EndMarker + "\nz\n"
	got, err := replaceBlock(doc, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + BeginMarker + "\nnew\n" + EndMarker + "\nz\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if b, _ := currentBlock(got); b != "new\n" {
		t.Errorf("currentBlock = %q, want %q", b, "new\n")
	}
	for _, bad := range []string{"a\nz\n", EndMarker + "\n" + BeginMarker + "\n", doc + doc} {
		if _, err := replaceBlock(bad, "x\n"); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// The README's findings block is what the verdict program makes of the
// committed run (examples/recipes/results/perseed.csv) and spec: regenerate
// it with
//
//	go run ./examples/recipes/verdict -perseed examples/recipes/results/perseed.csv -readme examples/recipes/README.md
func TestREADMEBlockIsGenerated(t *testing.T) {
	p, err := stats.ReadPerSeedFile(filepath.Join("..", "results", "perseed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := readSpecFile(filepath.Join("..", "findings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := block(p, fs)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := currentBlock(string(doc))
	if err != nil {
		t.Fatalf("examples/recipes/README.md: %v", err)
	}
	if got != want {
		t.Fatalf("examples/recipes/README.md's findings block differs from the verdict program's output on results/perseed.csv; regenerate it with\n"+
			"  go run ./examples/recipes/verdict -perseed examples/recipes/results/perseed.csv -readme examples/recipes/README.md\n--- README\n%s\n--- generated\n%s", got, want)
	}
}

func minMax(xs []float64) (float64, float64) {
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
