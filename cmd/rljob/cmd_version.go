package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/kernels"
	rsql "github.com/rljob/rljob/sql"
)

func init() {
	register(&command{
		name:  "version",
		usage: "",
		short: "print rljob's version and VCS revision (from the build info), Go's and DuckDB's",
		run: func(ctx context.Context, e *env, args []string) error {
			duck := "unknown"
			if eng, err := rsql.Open(ctx, ""); err == nil {
				_ = eng.Conn().QueryRowContext(ctx, "SELECT version()").Scan(&duck)
				eng.Close()
			}
			fmt.Fprintf(e.stdout, "rljob %s (%s, %s/%s, duckdb %s)\n", arrowio.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, duck)
			if line := buildLine(); line != "" {
				fmt.Fprintln(e.stdout, line)
			}
			fmt.Fprintf(e.stdout, "kernels %s, bf16 on %s (this CPU and build can run %s; RLJOB_KERNELS selects one, same results)\n",
				kernels.KernelSet(), kernels.BF16Dot(), strings.Join(kernels.KernelSets(), ", "))
			if line := cudaLine(); line != "" {
				fmt.Fprintln(e.stdout, line)
			}
			return nil
		},
	})
}

// buildLine describes the binary from its build info: the module path and
// version (a tag when installed with go install MODULE@vX, "(devel)" when
// built from a checkout), the VCS revision, its time and whether the tree
// had uncommitted changes, and the build tags.
func buildLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	line := "module " + bi.Main.Path + " " + bi.Main.Version
	if rev := s["vcs.revision"]; rev != "" {
		line += ", revision " + rev
		if t := s["vcs.time"]; t != "" {
			line += " (" + t + ")"
		}
		if s["vcs.modified"] == "true" {
			line += ", modified"
		}
	}
	if tags := s["-tags"]; tags != "" {
		line += ", tags " + tags
	}
	return line
}
