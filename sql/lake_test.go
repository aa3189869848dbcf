package sql

import (
	"context"
	"reflect"
	"testing"

	"github.com/rljob/rljob/arrowio"
)

// TestEmptyViewsMatchCommittedFiles checks that the typed empty view of each
// known table has exactly the columns and types DuckDB reads back from the
// Parquet files arrowio commits, so a job binds the same way before and after
// the first commit.
func TestEmptyViewsMatchCommittedFiles(t *testing.T) {
	ctx := context.Background()
	empty := openEngine(t, "")
	root := t.TempDir()
	l, err := arrowio.OpenLake(root)
	if err != nil {
		t.Fatal(err)
	}
	src := openEngine(t, "")
	queries := map[string]string{
		arrowio.TablePrompts: `SELECT 'p1' AS prompt_id, 'q' AS prompt, '5' AS answer, 'arith' AS task, 'train' AS split`,
		arrowio.TableRewards: `SELECT 'r0' AS rollout_id, 'exact' AS verifier, 1.0::DOUBLE AS reward, true AS correct, '5' AS extracted`,
		arrowio.TableMetrics: `SELECT 'actor/pg_loss' AS name, 0.5::DOUBLE AS value, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS created_at`,
	}
	for _, table := range knownTables {
		u := arrowio.Unit{Table: table, Run: "7", Step: 2}
		s, err := l.Begin(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if table == arrowio.TableRollouts {
			rr := arrowio.SyntheticRollouts(16, 1)
			_, err = s.WriteRecords("", arrowio.RolloutsSchema(), rr)
			rr.Release()
		} else {
			sch, _ := arrowio.SchemaFor(table)
			rr, qerr := src.QueryArrow(ctx, queries[table])
			if qerr != nil {
				t.Fatal(qerr)
			}
			_, err = s.WriteRecords("", sch, rr)
			rr.Release()
		}
		if err != nil {
			t.Fatalf("write %s: %v", table, err)
		}
		if _, err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	full := openEngine(t, root)
	if errs := full.TableErrors(); len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, table := range append(knownTables, "scored", "prompt_stats") {
		want := columnsOf(t, full, table)
		if got := columnsOf(t, empty, table); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: empty view columns\n got %v\nwant %v (from committed files)", table, got, want)
		}
	}
	got := queryRows(t, full, "SELECT run, step, count(*) FROM scored GROUP BY ALL")
	if want := [][]any{{"7", int64(2), int64(1)}}; !reflect.DeepEqual(got, want) {
		t.Errorf("scored over committed files = %v, want %v", got, want)
	}
}
