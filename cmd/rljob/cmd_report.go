package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/report"
	rsql "github.com/rljob/rljob/sql"
)

func init() {
	o := &reportFlags{}
	register(&command{
		name:  "report",
		usage: "--run R [--run R2 ...] [-o report.html] [--format html|png] [--lake DIR]",
		short: "draw a run's training curves (reward, entropy, KL, clip fraction, pass@k, ...) into one HTML file or PNGs",
		flags: func(fs *pflag.FlagSet) {
			fs.StringArrayVar(&o.runs, "run", nil, "run to draw (repeatable: several runs overlay, one colour each)")
			fs.StringVarP(&o.out, "output", "o", "", "output: an HTML file (default report.html), or with --format png a folder (default report-charts)")
			fs.StringVar(&o.format, "format", "html", "html: one self-contained page (charts embedded, no network at view time); png: one PNG file per chart")
		},
		run: o.runCmd,
	})
}

type reportFlags struct {
	runs        []string
	out, format string
}

// check validates the flags and returns the output path.
func (o *reportFlags) check(args []string) (string, error) {
	if len(args) > 0 {
		return "", &jobs.UsageError{Msg: fmt.Sprintf("report takes no positional arguments, got %q", args), Hint: "name runs with --run R (repeatable)"}
	}
	if len(o.runs) == 0 {
		return "", &jobs.UsageError{Msg: "no run given", Hint: "rljob report --run NAME [--run NAME2 ...]; rljob lake ls lists the runs"}
	}
	seen := map[string]bool{}
	for _, r := range o.runs {
		if r == "" || seen[r] {
			return "", &jobs.UsageError{Msg: fmt.Sprintf("--run %q: empty or given twice", r), Hint: "give each run once"}
		}
		seen[r] = true
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
	for _, te := range eng.TableErrors() {
		e.log.Warn().Msg(te.Error())
	}
	r, err := report.Build(ctx, eng, o.runs)
	var ue *report.UnknownRunError
	if errors.As(err, &ue) {
		return &jobs.UsageError{Msg: ue.Error(), Hint: "check --run; rljob lake ls --lake " + e.g.lake + " lists the runs"}
	}
	if err != nil {
		if rsql.IsTableError(err) {
			return &jobs.DataError{Msg: "report: a lake table cannot be read", Err: err}
		}
		return err
	}
	if err := r.Draw(); err != nil {
		return err
	}
	notes := 0
	for _, c := range r.Charts {
		notes += len(c.Notes)
	}
	switch o.format {
	case "png":
		paths, err := report.WritePNGs(out, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %d charts to %s/ (runs %s; %d without data for some run)\n", len(paths), out, strings.Join(o.runs, ", "), notes)
	default:
		if err := report.WriteHTMLFile(out, r); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s: %d charts (runs %s; %d without data for some run)\n", out, len(r.Charts), strings.Join(o.runs, ", "), notes)
	}
	return nil
}
