package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"
)

// openEngine opens an engine on lake ("" = none) and closes it at test end.
func openEngine(t testing.TB, lake string) *Engine {
	t.Helper()
	e, err := Open(context.Background(), lake)
	if err != nil {
		t.Fatalf("Open(%q): %v", lake, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// queryRows runs q on e's connection and returns every row as Go values.
func queryRows(t testing.TB, e *Engine, q string, args ...any) [][]any {
	t.Helper()
	rows, err := e.Conn().QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return out
}

// columnsOf returns "name TYPE" for each column of relation rel.
func columnsOf(t testing.TB, e *Engine, rel string) []string {
	t.Helper()
	var out []string
	for _, r := range queryRows(t, e, "DESCRIBE "+rel) {
		out = append(out, fmt.Sprint(r[0], " ", r[1]))
	}
	return out
}

// writeParquet writes the rows of a DuckDB query to path (parents created).
func writeParquet(t testing.TB, e *Engine, path, query string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.Exec(context.Background(), "COPY ("+query+") TO "+QuoteString(path)+" (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyLakeViewsAndMacrosBind(t *testing.T) {
	for _, tc := range []struct {
		name string
		lake func(t *testing.T) string
	}{
		{"no lake", func(*testing.T) string { return "" }},
		{"empty lake folder", func(t *testing.T) string { return t.TempDir() }},
		{"lake with only staging, locks and checkpoints", func(t *testing.T) string {
			root := t.TempDir()
			for _, d := range []string{"_staging/x", "_locks", "checkpoints/run=a/step=0", "rollouts"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(root, "_staging/x/part-0-0.parquet"), []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}
			return root
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := openEngine(t, tc.lake(t))
			if err := e.Exec(context.Background(), "CREATE TEMP TABLE s AS SELECT * FROM scored"); err != nil {
				t.Fatal(err)
			}
			if errs := e.TableErrors(); len(errs) != 0 {
				t.Fatalf("TableErrors = %v", errs)
			}
			for _, q := range []string{
				"SELECT * FROM prompts", "SELECT * FROM rollouts", "SELECT * FROM rewards", "SELECT * FROM metrics",
				"SELECT * FROM scored", "SELECT * FROM prompt_stats",
				"SELECT * FROM grpo_advantages('s')",
				"SELECT * FROM grpo_advantages('s', scale := 'batch')",
				"SELECT * FROM dr_grpo_advantages('s')",
				"SELECT * FROM rloo_advantages('s')",
				"SELECT * FROM reinforce_pp_baseline_advantages('s')",
			} {
				if rows := queryRows(t, e, q); len(rows) != 0 {
					t.Errorf("%s: %d rows on an empty lake", q, len(rows))
				}
			}
			want := []string{
				"run VARCHAR", "step BIGINT", "rollout_id VARCHAR", "prompt_id VARCHAR", "sample_idx INTEGER",
				"policy_step BIGINT", "prompt VARCHAR", "completion VARCHAR", "prompt_tokens INTEGER[]",
				"completion_tokens INTEGER[]", "logprobs FLOAT[]", "finish_reason VARCHAR", "temperature DOUBLE",
				"seed BIGINT", "tag VARCHAR", "created_at TIMESTAMP WITH TIME ZONE",
				"verifier VARCHAR", "reward DOUBLE", "correct BOOLEAN", "extracted VARCHAR",
			}
			if got := columnsOf(t, e, "scored"); !reflect.DeepEqual(got, want) {
				t.Errorf("scored columns\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestLakeViews(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	scratch := openEngine(t, "")
	// run '007' must stay a string; step comes from the path as BIGINT.
	writeParquet(t, scratch, filepath.Join(root, "rewards/run=007/step=3/part-0-0/part-0-0.parquet"),
		"SELECT 'r1' AS rollout_id, 'exact' AS verifier, 1.0::DOUBLE AS reward, true AS correct, '5' AS extracted")
	writeParquet(t, scratch, filepath.Join(root, "rewards/run=007/step=4/part-0-0/part-0-0.parquet"),
		"SELECT 'r2' AS rollout_id, 'exact' AS verifier, 0.0::DOUBLE AS reward, false AS correct, '6' AS extracted, 'x' AS note")
	// A user folder without Hive keys opens as is.
	writeParquet(t, scratch, filepath.Join(root, "prompts/gsm8k.parquet"),
		"SELECT 'p1' AS prompt_id, 'q?' AS prompt, '5' AS answer, 'gsm8k' AS task, 'test' AS split")
	// Not tables.
	writeParquet(t, scratch, filepath.Join(root, "_staging/abc/part-0-0.parquet"), "SELECT 1 AS x")
	writeParquet(t, scratch, filepath.Join(root, "checkpoints/run=a/step=0/x.parquet"), "SELECT 1 AS x")

	e := openEngine(t, root)
	if errs := e.TableErrors(); len(errs) != 0 {
		t.Fatalf("TableErrors = %v", errs)
	}
	if got, want := columnsOf(t, e, "rewards"), []string{
		"run VARCHAR", "step BIGINT", "rollout_id VARCHAR", "verifier VARCHAR", "reward DOUBLE",
		"correct BOOLEAN", "extracted VARCHAR", "note VARCHAR",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("rewards columns\n got %v\nwant %v", got, want)
	}
	got := queryRows(t, e, "SELECT run, step, rollout_id, note FROM rewards ORDER BY step")
	want := [][]any{{"007", int64(3), "r1", nil}, {"007", int64(4), "r2", "x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rewards rows = %v, want %v", got, want)
	}
	if got := columnsOf(t, e, "prompts"); !reflect.DeepEqual(got, []string{
		"prompt_id VARCHAR", "prompt VARCHAR", "answer VARCHAR", "task VARCHAR", "split VARCHAR",
	}) {
		t.Errorf("prompts columns = %v", got)
	}
	for _, q := range []string{"SELECT * FROM checkpoints", "SELECT * FROM _staging"} {
		if _, err := e.Conn().QueryContext(ctx, q); err == nil {
			t.Errorf("%s: want an error (not a table)", q)
		}
	}
	// rollouts has no files: typed empty view; after a commit and Refresh it is real.
	if rows := queryRows(t, e, "SELECT count(*) FROM rollouts"); rows[0][0] != int64(0) {
		t.Fatalf("rollouts count = %v", rows[0][0])
	}
	writeParquet(t, scratch, filepath.Join(root, "rollouts/run=007/step=3/part-0-0/part-0-0.parquet"),
		"SELECT 'r1' AS rollout_id, 'p1' AS prompt_id, 'train' AS tag")
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got = queryRows(t, e, "SELECT run, step, rollout_id, prompt_id, reward FROM scored")
	want = [][]any{{"007", int64(3), "r1", "p1", 1.0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scored after refresh = %v, want %v", got, want)
	}
	// A table that vanishes loses its view; a known one falls back to empty.
	if err := os.RemoveAll(filepath.Join(root, "rollouts")); err != nil {
		t.Fatal(err)
	}
	writeParquet(t, scratch, filepath.Join(root, "extra/a.parquet"), "SELECT 1 AS x")
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := queryRows(t, e, "SELECT count(*) FROM rollouts"); rows[0][0] != int64(0) {
		t.Errorf("rollouts after removal: count = %v", rows[0][0])
	}
	if err := os.RemoveAll(filepath.Join(root, "extra")); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Conn().QueryContext(ctx, "SELECT * FROM extra"); err == nil {
		t.Error("extra: view still there after its folder was removed")
	}
}

func TestCorruptParquetNamesFileAndSparesOtherTables(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	scratch := openEngine(t, "")
	writeParquet(t, scratch, filepath.Join(root, "rewards/run=a/step=1/part-0-0/part-0-0.parquet"),
		"SELECT 'r1' AS rollout_id, 'exact' AS verifier, 1.0::DOUBLE AS reward, true AS correct, '5' AS extracted")
	writeParquet(t, scratch, filepath.Join(root, "rollouts/run=a/step=1/part-0-0/part-0-0.parquet"),
		"SELECT 'r1' AS rollout_id, 'p1' AS prompt_id, 'train' AS tag")
	bad := filepath.Join(root, "rollouts/run=a/step=2/part-0-0/part-0-0.parquet")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("this is not a parquet file, just garbage bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeParquet(t, scratch, filepath.Join(root, "mytable/x.parquet"), "SELECT 1 AS x")
	badUser := filepath.Join(root, "usertable/y.parquet")
	if err := os.MkdirAll(filepath.Dir(badUser), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badUser, []byte("PAR1 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}

	e := openEngine(t, root) // must not fail
	errs := e.TableErrors()
	if len(errs) != 2 {
		t.Fatalf("TableErrors = %v, want rollouts and usertable", errs)
	}
	for i, want := range []struct{ table, file string }{{"rollouts", bad}, {"usertable", badUser}} {
		if !IsTableError(errs[i]) {
			t.Errorf("IsTableError(%v) = false", errs[i])
		}
		if errs[i].Table != want.table || !strings.Contains(errs[i].Error(), want.file) {
			t.Errorf("TableErrors[%d] = %q, want table %s naming %s", i, errs[i], want.table, want.file)
		}
	}
	// Other tables still work.
	if rows := queryRows(t, e, "SELECT sum(reward) FROM rewards"); rows[0][0] != 1.0 {
		t.Errorf("rewards sum = %v", rows[0][0])
	}
	if rows := queryRows(t, e, "SELECT x FROM mytable"); rows[0][0] != int32(1) {
		t.Errorf("mytable = %v", rows[0][0])
	}
	// Every way of reading the bad tables raises an error naming the file.
	for _, q := range []string{
		"SELECT * FROM rollouts",
		"SELECT count(*) FROM rollouts",
		"SELECT rollout_id FROM rollouts WHERE step = 1",
		"SELECT * FROM scored",
		"SELECT * FROM prompt_stats",
		"SELECT * FROM usertable",
	} {
		rr, err := e.QueryArrow(ctx, q)
		if err == nil {
			for rr.Next() {
			}
			err = rr.Err()
			rr.Release()
		}
		if err == nil {
			t.Errorf("%s: no error", q)
			continue
		}
		if !IsTableError(err) || !strings.Contains(err.Error(), bad[len(root):]) && !strings.Contains(err.Error(), badUser[len(root):]) {
			t.Errorf("%s: error %q does not name the file", q, err)
		}
	}
	// Fixing the file and refreshing clears the error.
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := e.TableErrors(); len(errs) != 1 || errs[0].Table != "usertable" {
		t.Errorf("TableErrors after fix = %v", errs)
	}
	if rows := queryRows(t, e, "SELECT count(*) FROM scored"); rows[0][0] != int64(1) {
		t.Errorf("scored count after fix = %v", rows[0][0])
	}
}

func TestOpenMissingLake(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(missing) = %v, want ErrNotExist", err)
	}
}

func TestSetVariable(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, "")
	ts := time.Date(2026, 11, 24, 9, 45, 13, 123456000, time.UTC)
	for _, tc := range []struct {
		name     string
		value    any
		wantType string
		want     any
	}{
		{"string with quote", "it's", "VARCHAR", "it's"},
		{"string that looks like a number", "7", "VARCHAR", "7"},
		{"int", 3, "BIGINT", int64(3)},
		{"int64", int64(-42), "BIGINT", int64(-42)},
		{"uint64 big", uint64(math.MaxUint64), "UBIGINT", uint64(math.MaxUint64)},
		{"float", 0.1, "DOUBLE", 0.1},
		{"float NaN", math.NaN(), "DOUBLE", "NaN"},
		{"bool", true, "BOOLEAN", true},
		{"nil", nil, "", nil},
		{"time", ts, "TIMESTAMP WITH TIME ZONE", ts},
		{"strings", []string{"a", "b'c"}, "VARCHAR[]", []any{"a", "b'c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.SetVariable(ctx, "v", tc.value); err != nil {
				t.Fatal(err)
			}
			row := queryRows(t, e, "SELECT typeof(getvariable('v')), getvariable('v')")[0]
			if tc.wantType != "" && row[0] != tc.wantType {
				t.Errorf("type = %v, want %v", row[0], tc.wantType)
			}
			got := row[1]
			if f, ok := got.(float64); ok && math.IsNaN(f) {
				got = "NaN"
			}
			if tm, ok := got.(time.Time); ok {
				got = tm.UTC()
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("value = %#v, want %#v", got, tc.want)
			}
		})
	}
	if err := e.SetVariable(ctx, "v", struct{}{}); err == nil {
		t.Error("SetVariable(struct{}{}) = nil, want an error")
	}
}

// upper is a string UDF: upper(s VARCHAR) VARCHAR.
type upper struct{}

func (upper) Config() duckdb.ScalarFuncConfig {
	varchar, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		panic(err)
	}
	return duckdb.ScalarFuncConfig{InputTypeInfos: []duckdb.TypeInfo{varchar}, ResultTypeInfo: varchar}
}

func (upper) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) {
		return "<" + strings.ToUpper(v[0].(string)) + ">", nil
	}}
}

func TestRegisterScalarUDF(t *testing.T) {
	e := openEngine(t, "")
	if err := e.RegisterScalarUDF("shout", &upper{}); err != nil {
		t.Fatal(err)
	}
	got := queryRows(t, e, "SELECT shout(s) FROM (VALUES ('abc'), (NULL), ('x y')) v(s) ORDER BY s NULLS LAST")
	want := [][]any{{"<ABC>"}, {"<X Y>"}, {nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shout = %v, want %v", got, want)
	}
}

func TestArrowRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, "")
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)

	sch := arrow.NewSchema([]arrow.Field{
		{Name: "prompt_id", Type: arrow.BinaryTypes.String},
		{Name: "reward", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	const n = 5000 // more than one DuckDB chunk (2048 rows)
	for i := range n {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("p%d", i%7))
		b.Field(1).(*array.Float64Builder).Append(float64(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	release, err := e.RegisterArrowView("incoming", rr)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Exec(ctx, "CREATE TEMP TABLE t AS FROM incoming"); err != nil {
		t.Fatal(err)
	}
	release()
	release() // idempotent
	if _, err := e.Conn().QueryContext(ctx, "SELECT * FROM incoming"); err == nil {
		t.Error("view still readable after release")
	}

	out, err := e.QueryArrow(ctx, "SELECT prompt_id, reward * 2 AS r2 FROM t ORDER BY reward")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if got := out.Schema().String(); !strings.Contains(got, "prompt_id: type=utf8") || !strings.Contains(got, "r2: type=float64") {
		t.Errorf("schema = %s", got)
	}
	var rows, batches int
	for out.Next() {
		rec := out.RecordBatch()
		batches++
		r2 := rec.Column(1).(*array.Float64)
		for i := range r2.Len() {
			if want := float64(2 * (rows + i)); r2.Value(i) != want {
				t.Fatalf("row %d: r2 = %v, want %v", rows+i, r2.Value(i), want)
			}
		}
		rows += int(rec.NumRows())
	}
	if err := out.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != n || batches < 2 {
		t.Errorf("got %d rows in %d batches, want %d rows in >= 2", rows, batches, n)
	}
}

func TestQueryErrorsKeepDuckDBMessage(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, "")
	_, err := e.QueryArrow(ctx, "SELEC 1")
	if err == nil || !strings.Contains(err.Error(), "Parser Error") {
		t.Errorf("QueryArrow(SELEC 1) = %v, want a parser error", err)
	}
	if IsTableError(err) {
		t.Errorf("IsTableError(%v) = true for a SQL error", err)
	}
	err = e.Exec(ctx, "SELECT nope FROM rollouts")
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Exec = %v, want the binder error naming the column", err)
	}
}
