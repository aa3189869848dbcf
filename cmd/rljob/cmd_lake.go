package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	rsql "github.com/rljob/rljob/sql"
)

func init() {
	var (
		olderThan time.Duration
		keep      string
		run       string
		out       string
		step      int64
	)
	register(&command{
		name:  "lake",
		usage: "ls | verify | views [-o FILE] | compact [--run R] | gc [--older-than 24h] [--keep-checkpoints last=K,every=M] | drop-step --run R --step S [--lake DIR]",
		short: "inspect and maintain the lake: ls (tables, runs, steps, rows, bytes), verify (every checksum and segment; lists unmanaged files), compact (segments of complete steps for fast reads), views (the CREATE VIEW/MACRO statements for duckdb -init), gc (staging leftovers of dead writers, superseded segments, old checkpoints), drop-step (remove an unfinished step, so that it can be redone with a changed job file)",
		flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&olderThan, "older-than", 24*time.Hour, "gc: remove _staging entries older than this (never one whose writer is still running: it holds a lock), and segments superseded for longer")
			fs.StringVar(&keep, "keep-checkpoints", "", "gc: keep the last K checkpoints of each run and those of every M-th step (last=K,every=M), plus every checkpoint a later step or another run refers to; remove the others")
			fs.StringVar(&run, "run", "", "compact, gc --keep-checkpoints: only this run; drop-step: the run")
			fs.Int64Var(&step, "step", -1, "drop-step: the unfinished step to remove")
			fs.StringVarP(&out, "output", "o", "", "views: write the statements to this file (default: stdout)")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return &jobs.UsageError{Msg: "lake needs one subcommand", Hint: "rljob lake ls | verify | views | compact | gc [--older-than 24h] | drop-step --run R --step S"}
			}
			if err := checkLakeFlag(e.g.lake, true); err != nil {
				return err
			}
			l := &arrowio.Lake{Root: e.g.lake}
			switch args[0] {
			case "ls":
				return lakeLs(e, l)
			case "verify":
				return lakeVerify(e, l)
			case "compact":
				return lakeCompact(ctx, e, l, run)
			case "views":
				return lakeViews(ctx, e, out)
			case "drop-step":
				return lakeDropStep(e, l, run, step)
			case "gc":
				if olderThan < 0 {
					return &jobs.UsageError{Msg: "--older-than must be >= 0"}
				}
				var ret *arrowio.Retention
				if keep != "" {
					r, err := arrowio.ParseRetention(keep)
					if err != nil {
						return &jobs.UsageError{Msg: "--keep-checkpoints " + keep + ": " + err.Error(), Hint: "e.g. --keep-checkpoints last=3,every=100"}
					}
					ret = &r
				}
				return lakeGC(ctx, e, l, olderThan, ret, run)
			}
			return &jobs.UsageError{Msg: fmt.Sprintf("unknown lake subcommand %q", args[0]), Hint: "rljob lake ls | verify | views | compact | gc | drop-step"}
		},
	})
}

func lakeLs(e *env, l *arrowio.Lake) error {
	ts, err := l.List()
	if err != nil {
		return fmt.Errorf("lake ls: %w", err)
	}
	var rows [][]string
	for _, t := range ts {
		steps, first, last := "-", "-", "-"
		if t.Steps > 0 {
			steps, first, last = fmt.Sprint(t.Steps), fmt.Sprint(t.MinStep), fmt.Sprint(t.MaxStep)
		}
		run := t.Run
		if t.Unmanaged && run == "" {
			run = "(user files)"
		}
		rows = append(rows, []string{t.Table, run, steps, first, last, fmt.Sprint(t.Rows), fmt.Sprint(t.Bytes)})
	}
	return printAligned(e.stdout, []string{"table", "run", "steps", "first", "last", "rows", "bytes"}, rows,
		[]bool{false, false, true, true, true, true, true})
}

func lakeVerify(e *env, l *arrowio.Lake) error {
	r, err := rsql.VerifyLake(context.Background(), l.Root)
	if err != nil {
		return fmt.Errorf("lake verify: %w", err)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(e.stdout, "PROBLEM %s\n", p)
	}
	for _, u := range r.Unmanaged {
		fmt.Fprintf(e.stdout, "unmanaged %s: not in any commit unit (user data: read by the views, not checked)\n", u)
	}
	if len(r.Problems) > 0 {
		var files []string
		for _, p := range r.Problems {
			files = append(files, p.Path)
		}
		return &jobs.DataError{
			Msg:  fmt.Sprintf("lake verify: %d problem(s) in %d commit units: %s", len(r.Problems), r.Checked, strings.Join(files, ", ")),
			File: files[0],
			Hint: "restore the files from a copy, or remove the damaged unit folder and rerun its step",
		}
	}
	if len(r.Unmanaged) > 0 {
		fmt.Fprintf(e.stdout, "ok: %d commit units verified; %d unmanaged file(s) listed above (not an error)\n", r.Checked, len(r.Unmanaged))
		return nil
	}
	fmt.Fprintf(e.stdout, "ok: %d commit units verified\n", r.Checked)
	return nil
}

func lakeGC(ctx context.Context, e *env, l *arrowio.Lake, olderThan time.Duration, keep *arrowio.Retention, run string) error {
	removed, err := l.GC(olderThan)
	if err != nil {
		return fmt.Errorf("lake gc: %w", err)
	}
	for _, r := range removed {
		fmt.Fprintf(e.stdout, "removed %s\n", r)
	}
	segs, err := l.GCSegments(olderThan)
	if err != nil {
		return fmt.Errorf("lake gc: %w", err)
	}
	for _, r := range segs {
		fmt.Fprintf(e.stdout, "removed %s (superseded)\n", r)
	}
	fmt.Fprintf(e.stdout, "ok: %d staging entries and %d superseded segments older than %s removed\n", len(removed), len(segs), olderThan)
	if keep == nil {
		return nil
	}
	args, rollouts, err := checkpointRefs(ctx, l)
	if err != nil {
		return fmt.Errorf("lake gc: %w", err)
	}
	plan, err := l.PlanRetention(*keep, run, args, rollouts)
	if err != nil {
		return fmt.Errorf("lake gc: %w", err)
	}
	for _, u := range plan.Remove {
		if err := l.RemoveUnit(u); err != nil {
			return fmt.Errorf("lake gc: %w", err)
		}
		fmt.Fprintf(e.stdout, "removed %s (checkpoint)\n", u.Dir())
	}
	fmt.Fprintf(e.stdout, "ok: %d checkpoints removed, %d kept (%s)\n", len(plan.Remove), len(plan.Keep), keep)
	return nil
}
