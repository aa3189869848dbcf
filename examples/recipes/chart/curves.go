package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rljob/rljob/examples/recipes/stats"
)

// evalRow is one evaluation of one arm run (a row of curves.csv).
type evalRow struct {
	arm                     string
	seed, eval              int
	rollouts, pass1, pass16 float64
}

var curvesHeader = []string{"arm", "seed", "eval", "rollouts", "pass1", "pass16"}

// readCurves parses curves.csv (header curvesHeader); errors name the line.
func readCurves(r io.Reader) ([]evalRow, error) {
	var rows []evalRow
	err := stats.ReadCSV(r, curvesHeader, func(rec []string) error {
		e, err := parseEvalRow(rec)
		if err == nil {
			rows = append(rows, e)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errors.New("no rows after the header")
	}
	return rows, nil
}

// parseEvalRow is one record of curves.csv.
func parseEvalRow(rec []string) (evalRow, error) {
	e := evalRow{arm: rec[0]}
	var err error
	for i, dst := range []*int{&e.seed, &e.eval} {
		if *dst, err = strconv.Atoi(strings.TrimSpace(rec[1+i])); err != nil {
			return e, fmt.Errorf("%s %q is not an integer", curvesHeader[1+i], rec[1+i])
		}
	}
	for i, dst := range []*float64{&e.rollouts, &e.pass1, &e.pass16} {
		if *dst, err = strconv.ParseFloat(strings.TrimSpace(rec[3+i]), 64); err != nil {
			return e, fmt.Errorf("%s %q is not a number", curvesHeader[3+i], rec[3+i])
		}
	}
	return e, nil
}

// band is one arm's line with its 95% band: at x[i], mean y[i] in [lo[i], hi[i]].
type band struct {
	arm          string
	x, y, lo, hi []float64
}

// chartSpec is one chart to draw.
type chartSpec struct {
	id, title, xlabel, ylabel string
	log2x                     bool
	bands                     []band
}

// starts are the start runs' arms: every other arm's eval 0, not lines.
var starts = map[string]bool{"sft": true, "sftfmt": true}

// rolloutBands are per arm (first-seen order, starts left out) and
// evaluation the mean rollouts and the mean of y over seeds with its band.
func rolloutBands(rows []evalRow, y func(evalRow) float64) ([]band, error) {
	var arms []string
	by := map[string]map[int][]evalRow{}
	for _, e := range rows {
		if starts[e.arm] {
			continue
		}
		if by[e.arm] == nil {
			by[e.arm] = map[int][]evalRow{}
			arms = append(arms, e.arm)
		}
		by[e.arm][e.eval] = append(by[e.arm][e.eval], e)
	}
	var out []band
	for _, a := range arms {
		var evals []int
		for ev := range by[a] {
			evals = append(evals, ev)
		}
		sort.Ints(evals)
		b := band{arm: a}
		for _, ev := range evals {
			var xs, ys []float64
			for _, e := range by[a][ev] {
				xs, ys = append(xs, e.rollouts), append(ys, y(e))
			}
			iv, err := stats.Bootstrap(ys)
			if err != nil {
				return nil, fmt.Errorf("arm %s, eval %d: %w", a, ev, err)
			}
			b.x, b.y, b.lo, b.hi = append(b.x, stats.Mean(xs)), append(b.y, iv.Mean), append(b.lo, iv.Lo), append(b.hi, iv.Hi)
		}
		out = append(out, b)
	}
	return out, nil
}

// passkBands are per arm with large-k rows (pass@K@N) the mean pass@k over
// seeds against k, with its band; only the arms of only, when it is not empty.
func passkBands(p *stats.PerSeed, only []string) ([]band, string, error) {
	var out []band
	n := ""
	for _, a := range p.Arms {
		ks := p.LargeKs(a)
		if len(ks) == 0 || (len(only) > 0 && !slices.Contains(only, a)) {
			continue
		}
		b := band{arm: a}
		for _, k := range ks {
			iv, err := stats.Bootstrap(p.Values(a, k.Metric))
			if err != nil {
				return nil, "", fmt.Errorf("arm %s, %s: %w", a, k.Metric, err)
			}
			b.x, b.y, b.lo, b.hi = append(b.x, float64(k.K)), append(b.y, iv.Mean), append(b.lo, iv.Lo), append(b.hi, iv.Hi)
			n = k.N
		}
		out = append(out, b)
	}
	return out, n, nil
}

// buildCharts makes the charts of the package comment from the inputs; the
// pass@k chart draws the arms of passkArms (every arm with large-k rows when
// it is empty).
func buildCharts(rows []evalRow, p *stats.PerSeed, passkArms []string) ([]chartSpec, error) {
	var out []chartSpec
	for _, m := range []struct {
		id, name string
		y        func(evalRow) float64
	}{
		{"pass1_vs_rollouts", "pass@1", func(e evalRow) float64 { return e.pass1 }},
		{"pass16_vs_rollouts", "pass@16", func(e evalRow) float64 { return e.pass16 }},
	} {
		bs, err := rolloutBands(rows, m.y)
		if err != nil {
			return nil, err
		}
		out = append(out, chartSpec{id: m.id, title: "Held-out " + m.name + " against train rollouts spent (mean over seeds, 95% bootstrap band)",
			xlabel: "sampled train rollouts", ylabel: m.name, bands: bs})
	}
	bs, n, err := passkBands(p, passkArms)
	if err != nil {
		return nil, err
	}
	if len(bs) > 0 {
		out = append(out, chartSpec{id: "passk_vs_k", title: "Held-out pass@k against k (" + n + " samples per prompt; mean over seeds, 95% bootstrap band)",
			xlabel: "k (log2 scale)", ylabel: "pass@k", log2x: true, bands: bs})
	}
	return out, nil
}
