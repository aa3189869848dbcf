package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/rljob/rljob/jobs"
)

func init() {
	register(&command{
		name:  "stages",
		usage: "",
		short: "list every stage with its arguments, types, defaults and docs",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return &jobs.UsageError{Msg: "stages takes no arguments"}
			}
			writeStages(e, jobs.DefaultRegistry)
			return nil
		},
	})
}

// writeStages prints, for each stage, its call signature, its doc wrapped
// at 78 columns, and one line per argument: name, type, default, doc.
func writeStages(e *env, reg *jobs.Registry) {
	fmt.Fprintln(e.stdout, "Every stage also takes when := <boolean expression> (false or NULL: the call is skipped and")
	fmt.Fprintln(e.stdout, "recorded), and every argument may be a constant SQL expression evaluated when the call runs.")
	fmt.Fprintln(e.stdout)
	for i, s := range reg.Stages() {
		sp := s.Spec()
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		var sig []string
		for _, a := range sp.Args {
			sig = append(sig, a.Name+" := "+string(a.Type))
		}
		fmt.Fprintf(e.stdout, "CALL %s(%s)\n", sp.Name, strings.Join(sig, ", "))
		for _, l := range wrap(sp.Doc, 76) {
			fmt.Fprintf(e.stdout, "  %s\n", l)
		}
		if sp.Sharded {
			fmt.Fprintln(e.stdout, "  sharded: yes (hash(prompt_id) % num_shards = shard)")
		} else {
			fmt.Fprintln(e.stdout, "  sharded: no (runs on shard 0)")
		}
		w := 0
		for _, a := range sp.Args {
			w = max(w, len(a.Name))
		}
		for _, a := range sp.Args {
			fmt.Fprintf(e.stdout, "    %-*s  %-6s  default %s\n", w, a.Name, a.Type, a.DefaultString())
			for _, l := range wrap(a.Doc, 70) {
				fmt.Fprintf(e.stdout, "    %-*s  %s\n", w, "", l)
			}
		}
	}
}

// wrap splits s into lines of at most n bytes at spaces.
func wrap(s string, n int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			out = append(out, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}
