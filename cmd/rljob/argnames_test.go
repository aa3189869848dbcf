package main

import (
	"context"
	"strings"
	"testing"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	rsql "github.com/rljob/rljob/sql"
)

// TestStageArgumentsParseInDuckDB keeps job files readable by duckdb itself:
// every stage argument name must be accepted by DuckDB's parser in
// `CALL stage(name := 1)`. Reserved words (table, into, from, select, ...)
// are syntax errors there, so no stage may declare one.
func TestStageArgumentsParseInDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := arrowio.OpenLake(dir); err != nil {
		t.Fatal(err)
	}
	e, err := rsql.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, st := range jobs.DefaultRegistry.Stages() {
		sp := st.Spec()
		for _, a := range sp.Args {
			q := "CALL " + sp.Name + "(" + a.Name + " := 1)"
			err := e.Exec(ctx, q)
			if err != nil && strings.Contains(err.Error(), "Parser Error") {
				t.Errorf("stage %s: argument %q is not valid DuckDB syntax (%v); rename it", sp.Name, a.Name, err)
			}
		}
	}
}
