package main

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"runtime"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"rljob/arrowio"
)

func init() {
	register(&command{
		name:  "version",
		usage: "",
		short: "print rljob's version, Go's and DuckDB's",
		run: func(ctx context.Context, e *env, args []string) error {
			duck := "unknown"
			if db, err := stdsql.Open("duckdb", ""); err == nil {
				_ = db.QueryRowContext(ctx, "SELECT version()").Scan(&duck)
				db.Close()
			}
			fmt.Fprintf(e.stdout, "rljob %s (%s, %s/%s, duckdb %s)\n", arrowio.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, duck)
			return nil
		},
	})
}
