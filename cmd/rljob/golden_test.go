package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden files (go test -run TestStagesDoc -update).
var update = flag.Bool("update", false, "rewrite the golden files this package's tests compare with (docs/stages.md)")

// golden compares got with the file at path, or writes it there under
// -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test -tags duckdb_arrow ./cmd/rljob -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		abs, _ := filepath.Abs(path)
		t.Errorf("%s is out of date: the stages changed; regenerate it with\n  go test -tags duckdb_arrow ./cmd/rljob -run %s -update\nand review the diff", abs, t.Name())
	}
}

// stagesDocHead leads docs/stages.md, above the generated reference.
const stagesDocHead = `# Stages

Every ` + "`CALL <stage>(...)`" + ` a job file can make, as ` + "`rljob stages`" + ` prints it:
each stage's signature, what it does, whether it is sharded, and one line per
argument (name, type, default, doc).

This page is generated: ` + "`go test -tags duckdb_arrow ./cmd/rljob -run TestStagesDoc -update`" + `
rewrites it from the stage registry, and the same test fails when it is out of
date. Edit the stages' docs in the code (their ` + "`Spec()`" + `), not this page.

Argument types: ` + "`table`" + ` takes a table or view name (` + "`'t'`" + ` or ` + "`t`" + `) or a query
in single quotes (` + "`'SELECT …'`" + `, ` + "`'FROM t WHERE …'`" + `); ` + "`query`" + ` a query; ` + "`string`" + `,
` + "`int`" + `, ` + "`float`" + `, ` + "`bool`" + ` a constant SQL expression of that type. A policy
argument takes ` + "`'latest'`" + `, ` + "`'step=K'`" + `, ` + "`'run=X'`" + `, ` + "`'run=X/step=K'`" + ` or a
checkpoint folder.

` + "```text\n"

// TestStagesDoc: docs/stages.md is rljob stages' output (golden file).
func TestStagesDoc(t *testing.T) {
	code, out, stderr := rljob(t, nil, "stages")
	if code != 0 {
		t.Fatalf("stages: exit %d: %s", code, stderr)
	}
	golden(t, "../../docs/stages.md", stagesDocHead+out+"```\n")
}
