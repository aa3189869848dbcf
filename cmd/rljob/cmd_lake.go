package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"rljob/arrowio"
	"rljob/jobs"
)

func init() {
	var olderThan time.Duration
	register(&command{
		name:  "lake",
		usage: "ls | verify | gc [--older-than 24h] [--lake DIR]",
		short: "inspect the lake: ls (tables, runs, steps, rows, bytes), verify (every checksum; lists unmanaged files), gc (staging leftovers of dead writers)",
		flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&olderThan, "older-than", 24*time.Hour, "gc: remove _staging entries older than this (never one whose writer is still running: it holds a lock)")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return &jobs.UsageError{Msg: "lake needs one subcommand", Hint: "rljob lake ls | verify | gc [--older-than 24h]"}
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
			case "gc":
				if olderThan < 0 {
					return &jobs.UsageError{Msg: "--older-than must be >= 0"}
				}
				return lakeGC(e, l, olderThan)
			}
			return &jobs.UsageError{Msg: fmt.Sprintf("unknown lake subcommand %q", args[0]), Hint: "rljob lake ls | verify | gc"}
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
	r, err := l.VerifyReport()
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

func lakeGC(e *env, l *arrowio.Lake, olderThan time.Duration) error {
	removed, err := l.GC(olderThan)
	if err != nil {
		return fmt.Errorf("lake gc: %w", err)
	}
	for _, r := range removed {
		fmt.Fprintf(e.stdout, "removed %s\n", r)
	}
	fmt.Fprintf(e.stdout, "ok: %d staging entries older than %s removed\n", len(removed), olderThan)
	return nil
}
