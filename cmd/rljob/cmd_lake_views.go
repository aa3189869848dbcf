package main

import (
	"context"
	"fmt"
	"os"

	rsql "github.com/rljob/rljob/sql"
)

// lakeViews prints (or writes to out) the statements that give a plain
// DuckDB session the views and macros rljob sql sees: `duckdb -init
// views.sql`, or duckdb.sql(open('views.sql').read()) in Python.
func lakeViews(ctx context.Context, e *env, out string) error {
	eng, err := rsql.Open(ctx, e.g.lake)
	if err != nil {
		return fmt.Errorf("lake views: %w", err)
	}
	defer eng.Close()
	script, err := eng.ExportSQL(ctx)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = fmt.Fprint(e.stdout, script)
		return err
	}
	if err := os.WriteFile(out, []byte(script), 0o666); err != nil {
		return fmt.Errorf("lake views: %w", err)
	}
	return nil
}
