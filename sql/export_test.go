package sql

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// The exported statements give a plain DuckDB connection the views and
// macros of the engine: the same query results.
func TestExportSQL(t *testing.T) {
	ctx := context.Background()
	scratch := openEngine(t, "")
	root := t.TempDir()
	writeParquet(t, scratch, filepath.Join(root, "rollouts/run=a/step=0/part-0-0/x.parquet"),
		`SELECT 'r' || i AS rollout_id, 'p' || (i % 3) AS prompt_id, (i // 3)::INTEGER AS sample_idx, 0::BIGINT AS policy_step,
		        'q' AS prompt, 'c' || i AS completion, [1, 2]::INTEGER[] AS prompt_tokens, [3, i]::INTEGER[] AS completion_tokens,
		        [-0.5, -0.25]::FLOAT[] AS logprobs, 'stop' AS finish_reason, 1.0::DOUBLE AS temperature, i::BIGINT AS seed,
		        'train' AS tag, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS created_at, '1' AS answer, 'arith' AS task FROM range(9) t(i)`)
	writeParquet(t, scratch, filepath.Join(root, "rewards/run=a/step=0/part-1-0/x.parquet"),
		`SELECT 'r' || i AS rollout_id, 'exact' AS verifier, (i % 2)::DOUBLE AS reward, i % 2 = 0 AS correct, '' AS extracted FROM range(9) t(i)`)
	e, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	script, err := e.ExportSQL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(script, filepath.ToSlash(root)) || !strings.Contains(script, "CREATE OR REPLACE VIEW prompt_stats") {
		t.Fatalf("script lacks the lake path or the library:\n%s", script)
	}
	db, err := stdsql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, script); err != nil {
		t.Fatalf("exported script fails on a fresh connection: %v", err)
	}
	for _, q := range []string{
		"SELECT prompt_id, attempts, correct, pass_rate FROM prompt_stats ORDER BY prompt_id",
		"SELECT count(*), sum(reward) FROM scored",
		"SELECT rollout_id, advantage FROM grpo_advantages('scored') ORDER BY rollout_id",
		"SELECT pass_at_k(16, 4, 4)",
	} {
		want := rowsOf(t, e.Conn(), q)
		got := rowsOf(t, conn, q)
		if want == "" || want != got {
			t.Errorf("%s:\nrljob %q\nexported %q", q, want, got)
		}
	}
}

func rowsOf(t *testing.T, c *stdsql.Conn, q string) string {
	t.Helper()
	rows, err := c.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmtRow(vals))
	}
	return strings.Join(out, "\n")
}

func fmtRow(vals []any) string {
	var parts []string
	for _, v := range vals {
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, "|")
}
