package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/report"
	rsql "github.com/rljob/rljob/sql"
)

func init() {
	o := &reportFlags{}
	register(&command{
		name:  "report",
		usage: "--run R[,R2,...] [--prompt ID,...] [-o report.html] [--format html|png] [--watch [--interval 10s]] [--lake DIR]",
		short: "draw runs' metrics (every metric, run table, samples) into one interactive offline HTML page, or the key charts as PNGs",
		flags: func(fs *pflag.FlagSet) {
			fs.StringArrayVar(&o.runs, "run", nil, "run to draw: repeatable or comma-separated (a,b,c); several runs overlay, one colour each")
			fs.StringVarP(&o.out, "output", "o", "", "output: an HTML file (default report.html), or with --format png a folder (default report-charts)")
			fs.StringVar(&o.format, "format", "html", "html: one self-contained interactive page (no network at view time); png: one PNG file per key chart")
			fs.StringArrayVar(&o.prompts, "prompt", nil, "prompt id whose samples the samples table shows at every step (repeatable or comma-separated), besides the first and latest step")
			fs.BoolVar(&o.watch, "watch", false, "keep running: rewrite the page whenever a run commits a step (complete steps only; the page reloads itself; Ctrl-C stops)")
			fs.DurationVar(&o.interval, "interval", 10*time.Second, "with --watch: how often to look for new steps")
		},
		run: o.runCmd,
	})
}

type reportFlags struct {
	runs        []string
	prompts     []string
	out, format string
	watch       bool
	interval    time.Duration
}

// runNames splits the --run values on commas.
func (o *reportFlags) runNames() []string { return splitCommas(o.runs) }

func splitCommas(vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

// check validates the flags and returns the output path.
func (o *reportFlags) check(args []string) (string, error) {
	if len(args) > 0 {
		return "", &jobs.UsageError{Msg: fmt.Sprintf("report takes no positional arguments, got %q", args), Hint: "name runs with --run a,b,c or --run a --run b"}
	}
	if len(o.runs) == 0 {
		return "", &jobs.UsageError{Msg: "no run given", Hint: "rljob report --run NAME[,NAME2,...]; rljob lake ls lists the runs"}
	}
	seen := map[string]bool{}
	for _, r := range o.runNames() {
		if r == "" || seen[r] {
			return "", &jobs.UsageError{Msg: fmt.Sprintf("--run %q: empty or given twice", r), Hint: "give each run once, e.g. --run a,b,c"}
		}
		seen[r] = true
	}
	if o.watch && (o.format != "html" || o.interval <= 0) {
		return "", &jobs.UsageError{Msg: fmt.Sprintf("--watch needs --format html and a positive --interval (got %s, %s)", o.format, o.interval), Hint: "rljob report --run R --watch --interval 10s"}
	}
	out := o.out
	switch o.format {
	case "html":
		if out == "" {
			out = "report.html"
		}
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			return "", &jobs.UsageError{Msg: fmt.Sprintf("-o %s is a folder", out), Hint: "give the HTML file to write, e.g. -o " + filepath.Join(out, "report.html")}
		}
	case "png":
		if out == "" {
			out = "report-charts"
		}
		if st, err := os.Stat(out); err == nil && !st.IsDir() {
			return "", &jobs.UsageError{Msg: fmt.Sprintf("-o %s is a file; --format png writes one PNG per chart into a folder", out), Hint: "give a folder with -o DIR"}
		}
	default:
		return "", &jobs.UsageError{Msg: fmt.Sprintf("bad --format %q", o.format), Hint: "one of html, png"}
	}
	parent := filepath.Dir(filepath.Clean(out))
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		return "", &jobs.UsageError{Msg: fmt.Sprintf("-o %s: folder %s does not exist", out, parent), Hint: "create it first (mkdir -p " + parent + ")"}
	}
	return out, nil
}

func (o *reportFlags) runCmd(ctx context.Context, e *env, args []string) error {
	out, err := o.check(args)
	if err != nil {
		return err
	}
	if err := checkLakeFlag(e.g.lake, true); err != nil {
		return err
	}
	eng, err := rsql.Open(ctx, e.g.lake)
	if err != nil {
		return fmt.Errorf("open engine on %s: %w", e.g.lake, err)
	}
	defer eng.Close()
	if o.watch {
		return o.watchLoop(ctx, e, eng, out)
	}
	for _, te := range eng.TableErrors() {
		e.log.Warn().Msg(te.Error())
	}
	return o.render(ctx, e, eng, out)
}

// render builds the report of the engine's current views and writes it. An
// unknown run (or an empty lake) writes a page saying so and returns a
// usage error.
func (o *reportFlags) render(ctx context.Context, e *env, eng *rsql.Engine, out string) error {
	runs := o.runNames()
	r, err := report.Build(ctx, eng, runs, splitCommas(o.prompts)...)
	var ue *report.UnknownRunError
	if errors.As(err, &ue) {
		hint := "check --run; rljob lake ls --lake " + e.g.lake + " lists the runs"
		if len(ue.Known) == 0 {
			hint = "the lake has no run with metrics or rollouts yet: run a job first (rljob run JOB --lake " + e.g.lake + " --run NAME)"
		}
		if o.format == "html" {
			mr := report.MessageReport(eng.Lake(), runs, ue.Error()+" — "+hint)
			mr.RefreshS = o.refreshS()
			if werr := report.WriteHTMLFile(out, mr); werr != nil {
				return werr
			}
			fmt.Fprintf(e.stdout, "wrote %s: a page saying %s\n", out, ue.Error())
		}
		return &jobs.UsageError{Msg: ue.Error(), Hint: hint}
	}
	if err != nil {
		if rsql.IsTableError(err) {
			return &jobs.DataError{Msg: "report: a lake table cannot be read", Err: err}
		}
		return err
	}
	if r.Message != "" {
		e.log.Warn().Msg(r.Message)
	}
	if o.format == "png" {
		return o.writePNGs(e, r, out)
	}
	r.RefreshS = o.refreshS()
	if err := report.WriteHTMLFile(out, r); err != nil {
		return err
	}
	flat := 0
	for _, p := range r.Panels {
		if p.Flat != "" {
			flat++
		}
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d panels, %d of them one line (constant or no data) (runs %s)\n", out, len(r.Panels), flat, strings.Join(runs, ", "))
	return nil
}

// refreshS is how often a --watch page reloads itself: every --interval,
// at least 2 s; 0 (no reload) without --watch.
func (o *reportFlags) refreshS() int {
	if !o.watch {
		return 0
	}
	return max(2, int(math.Ceil(o.interval.Seconds())))
}

func (o *reportFlags) writePNGs(e *env, r *report.Report, out string) error {
	if err := r.Draw(); err != nil {
		return err
	}
	notes := 0
	for _, c := range r.Charts {
		notes += len(c.Notes)
	}
	paths, err := report.WritePNGs(out, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d charts to %s/ (runs %s; %d without data for some run)\n", len(paths), out, strings.Join(r.Runs, ", "), notes)
	return nil
}

// watchLoop rewrites the page whenever a run commits a step, reading the
// complete steps only (report.CompleteSteps), until ctx ends. An unknown
// run is not fatal here: the page says so until the run's first step.
func (o *reportFlags) watchLoop(ctx context.Context, e *env, eng *rsql.Engine, out string) error {
	last := ""
	for {
		cs, err := report.NewCompleteSteps(e.g.lake)
		if err != nil {
			return err
		}
		if fp := cs.Fingerprint(o.runNames()); fp != last {
			eng.SetSnapshot(cs.Snapshot())
			if err := eng.Refresh(ctx); err != nil {
				return fmt.Errorf("report: refresh lake views: %w", err)
			}
			err := o.render(ctx, e, eng, out)
			var ue *jobs.UsageError
			if err != nil && !errors.As(err, &ue) {
				return err
			}
			if err != nil {
				e.log.Warn().Msg(err.Error())
			}
			last = fp
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}
