// Command chart draws the charts of make compare (examples/recipes/compare.sh):
// held-out pass@1 and pass@16 (y) against train rollouts spent (x), one line
// per recipe, with report's plotting code (package report, gonum/plot).
//
//	rljob sql --lake L --format csv "SELECT recipe, rollouts, pass1, pass16 FROM ..." |
//	    go run -tags duckdb_arrow ./examples/recipes/chart -o OUT/charts
//
// Input: CSV with a header naming the columns recipe, rollouts, pass1 and
// pass16 (any order, other columns ignored), one row per recipe and
// evaluation (compare.sh passes the mean over seeds, and the SFT start as
// each recipe's point at 0 rollouts). A recipe's line is its rows sorted by
// rollouts; the recipes keep the order of their first row. Output: the PNG
// files 01-pass1_vs_rollouts.png and 02-pass16_vs_rollouts.png in the -o
// folder (created), the same size and style as rljob report --format png.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rljob/rljob/report"
)

// point is one evaluation of one recipe.
type point struct {
	rollouts, pass1, pass16 float64
}

// curves are the recipes' points in first-seen recipe order.
type curves struct {
	recipes []string
	points  map[string][]point
}

// readCurves parses the CSV described in the package comment.
func readCurves(r io.Reader) (*curves, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("chart: read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	for _, want := range []string{"recipe", "rollouts", "pass1", "pass16"} {
		if _, ok := col[want]; !ok {
			return nil, fmt.Errorf("chart: no column %q in header %v", want, head)
		}
	}
	c := &curves{points: map[string][]point{}}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		var p point
		for _, f := range []struct {
			name string
			dst  *float64
		}{{"rollouts", &p.rollouts}, {"pass1", &p.pass1}, {"pass16", &p.pass16}} {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[col[f.name]]), 64)
			if err != nil {
				return nil, fmt.Errorf("chart: line %d: %s: %w", line, f.name, err)
			}
			*f.dst = v
		}
		name := rec[col["recipe"]]
		if _, ok := c.points[name]; !ok {
			c.recipes = append(c.recipes, name)
		}
		c.points[name] = append(c.points[name], p)
	}
	if len(c.recipes) == 0 {
		return nil, errors.New("chart: no rows")
	}
	for _, name := range c.recipes {
		ps := c.points[name]
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].rollouts < ps[j].rollouts })
	}
	return c, nil
}

// build turns the curves into a report with the two charts (not drawn yet).
func build(c *curves) *report.Report {
	r := &report.Report{Lake: "make compare", Runs: c.recipes, Generated: time.Now().UTC()}
	for _, k := range []struct {
		id, metric string
		y          func(point) float64
	}{
		{"pass1_vs_rollouts", "pass@1", func(p point) float64 { return p.pass1 }},
		{"pass16_vs_rollouts", "pass@16", func(p point) float64 { return p.pass16 }},
	} {
		ch := &report.Chart{
			ID:      k.id,
			Title:   "Held-out " + k.metric + " against train rollouts spent (mean over seeds)",
			XLabel:  "sampled train rollouts",
			YLabel:  k.metric,
			Metrics: []string{k.metric},
		}
		for _, name := range c.recipes {
			s := report.Series{Run: name, Name: k.metric}
			for _, p := range c.points[name] {
				s.X = append(s.X, p.rollouts)
				s.Y = append(s.Y, k.y(p))
			}
			ch.Series = append(ch.Series, s)
		}
		r.Charts = append(r.Charts, ch)
	}
	return r
}

func run(in io.Reader, dir string) ([]string, error) {
	c, err := readCurves(in)
	if err != nil {
		return nil, err
	}
	r := build(c)
	if err := r.Draw(); err != nil {
		return nil, err
	}
	return report.WritePNGs(dir, r)
}

func main() {
	out := flag.String("o", "charts", "folder for the PNG files")
	inPath := flag.String("i", "-", "CSV input file (- for stdin)")
	flag.Parse()
	in := io.Reader(os.Stdin)
	if *inPath != "-" {
		f, err := os.Open(*inPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	paths, err := run(in, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}
