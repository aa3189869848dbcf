// Command chart draws the charts of make compare (examples/recipes/compare.sh)
// with 95% bootstrap bands over seeds (examples/recipes/stats), in the size
// and style of rljob report --format png (package report's geometry, gonum/plot):
//
//	go run -tags duckdb_arrow ./examples/recipes/chart -perseed OUT/perseed.csv -curves OUT/curves.csv -o OUT/charts
//
// Inputs: curves.csv (arm,seed,eval,rollouts,pass1,pass16: every
// evaluation of every arm run, the start's as eval 0 at 0 rollouts) and
// perseed.csv (arm,seed,metric,value; the large-k metrics pass@K@N).
// Outputs, in the -o folder (created):
//
//	01-pass1_vs_rollouts.png   held-out pass@1 against sampled train rollouts,
//	                           per arm the mean over seeds at each evaluation
//	                           (x: the mean rollouts spent by then) with the
//	                           95% bootstrap band of the pass@1 over seeds
//	02-pass16_vs_rollouts.png  the same for pass@16
//	03-passk_vs_k.png          pass@k against k (log2 axis, k = 1 … 256) per
//	                           arm with large-k rows (or those of -passk-arms),
//	                           mean and 95% band
//
// A chart with no data is left out (03 without large-k rows).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/rljob/rljob/examples/recipes/stats"
	"github.com/rljob/rljob/report"
)

func run(perseedPath, curvesPath, dir string, passkArms []string) ([]string, error) {
	cv, err := stats.ReadFile(curvesPath, readCurves)
	if err != nil {
		return nil, err
	}
	p, err := stats.ReadPerSeedFile(perseedPath)
	if err != nil {
		return nil, err
	}
	charts, err := buildCharts(cv, p, passkArms)
	if err != nil {
		return nil, err
	}
	r := &report.Report{Lake: "make compare"}
	for _, c := range charts {
		png, err := c.draw()
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.id, err)
		}
		r.Charts = append(r.Charts, &report.Chart{ID: c.id, Title: c.title, PNG: png})
	}
	return report.WritePNGs(dir, r)
}

func main() {
	out := flag.String("o", "charts", "folder for the PNG files")
	perseed := flag.String("perseed", "", "make compare's perseed.csv (required)")
	curves := flag.String("curves", "", "make compare's curves.csv (required)")
	passkArms := flag.String("passk-arms", "", "the arms of the pass@k chart, space- or comma-separated (default: every arm with large-k rows)")
	flag.Parse()
	if *perseed == "" || *curves == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "chart: usage: chart -perseed FILE -curves FILE [-o DIR] [-passk-arms 'A B ...']")
		os.Exit(2)
	}
	paths, err := run(*perseed, *curves, *out, strings.FieldsFunc(*passkArms, func(r rune) bool { return r == ',' || r == ' ' }))
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}
