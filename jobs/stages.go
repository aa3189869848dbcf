package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
)

func init() {
	Register(saveStage{})
	Register(logMetricsStage{})
	Register(rewardStage{})
	Register(execStage{})
}

// saveStage commits a query's result (or a table's rows) to a lake table.
type saveStage struct{}

func (saveStage) Spec() StageSpec {
	return StageSpec{
		Name: "save",
		Doc: "Commit the result of a query (or all rows of a table, source) to the lake table `output`, as this step's unit " +
			"output/run=R/step=S/part-<call>-<shard>/. Columns named run or step are dropped (they come from the path). " +
			"Into a known table (prompts, rollouts, rewards, metrics) the rows are conformed to its schema: its columns " +
			"first, cast to their types, missing ones NULL (created_at: now), then any extra columns. " +
			"An empty result commits nothing. Runs on shard 0 only.",
		Args: []ArgSpec{
			{Name: "query", Type: TypeQuery, Doc: "SELECT whose rows to save (give query or source)"},
			{Name: "source", Type: TypeTable, Doc: "table, view or query whose rows to save (give query or source; named source, not table, because TABLE is a reserved word DuckDB rejects as an argument name)"},
			{Name: "output", Type: TypeString, Required: true, Doc: "lake table to write (lower-case name, e.g. 'prompts', 'rollouts', 'eval_set')"},
		},
		Outputs: func(a Args) []string { return []string{a.String("output")} },
		Check: func(a Args) (string, string) {
			if a.Has("query") == a.Has("source") {
				return "give exactly one of query and source", "save(query := 'SELECT ...', output := 't') or save(source := 'batch', output := 't')"
			}
			return checkOutputTable(a.String("output"))
		},
	}
}

func (saveStage) Run(ctx context.Context, sc *StageCtx, a Args) (Summary, error) {
	into := a.String("output")
	src, arg := a.String("query"), "query"
	if a.Has("source") {
		if _, err := sc.Columns(ctx, "source", a.String("source")); err != nil {
			return Summary{}, err
		}
		src, arg = "SELECT * FROM "+TableRef(a.String("source")), "source"
	}
	// SELECT * over a subquery renames duplicate columns (a, a_1): look at
	// the query's own names first.
	if raw, err := describeColumns(ctx, sc, src); err == nil {
		if err := checkDistinctColumns(a, arg, raw); err != nil {
			return Summary{}, err
		}
	}
	if sch, ok := arrowio.SchemaFor(into); ok {
		cols, err := sc.Columns(ctx, arg, "("+src+")")
		if err != nil {
			return Summary{}, err
		}
		src = conformSQL(sch, cols, src)
	}
	rr, err := sc.Engine.QueryArrow(ctx, src)
	if err != nil {
		return Summary{}, ClassifySQL(err, a.Pos(arg), src)
	}
	defer rr.Release()
	if err := checkDistinctColumns(a, arg, fieldNames(rr.Schema())); err != nil {
		return Summary{}, err
	}
	body, empty, err := peekNonEmpty(rr)
	if err != nil {
		return Summary{}, ClassifySQL(err, a.Pos(arg), src)
	}
	defer body.Release()
	if empty {
		return Summary{Table: into, Skipped: true, Note: fmt.Sprintf("save: %s is empty: nothing committed to %s", arg, into)}, nil
	}
	rows, err := sc.Commit(ctx, into, body)
	if err != nil {
		return Summary{}, ClassifySQL(err, a.Pos(arg), src)
	}
	return Summary{Table: into, Rows: rows}, nil
}

// checkDistinctColumns refuses a result with two columns of the same name
// (compared without case, as DuckDB compares identifiers): the Parquet file
// would hold both, and no reader could tell them apart.
func checkDistinctColumns(a Args, arg string, cols []string) error {
	name, i, j, dup := duplicateColumn(cols)
	if !dup {
		return nil
	}
	return &UsageError{Pos: a.Pos(arg), Msg: fmt.Sprintf("save: the %s's result has two columns named %q (columns %d and %d); nothing committed", arg, name, i, j),
		Hint: "give each column its own name (SELECT x AS a, y AS b ...), or select only one of them"}
}

// describeColumns returns the column names of query's result as DuckDB's
// DESCRIBE gives them (duplicates kept).
func describeColumns(ctx context.Context, sc *StageCtx, query string) ([]string, error) {
	rr, err := sc.Engine.QueryArrow(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	var names []string
	for rr.Next() {
		rec := rr.RecordBatch()
		col, ok := rec.Column(0).(stringArray)
		if !ok {
			return nil, fmt.Errorf("jobs: DESCRIBE gave %s column names", rec.Column(0).DataType())
		}
		for i := 0; i < col.Len(); i++ {
			names = append(names, strings.Clone(col.Value(i)))
		}
	}
	return names, rr.Err()
}

func fieldNames(sch *arrow.Schema) []string {
	names := make([]string, sch.NumFields())
	for i, f := range sch.Fields() {
		names[i] = f.Name
	}
	return names
}

// duplicateColumn returns the first name that occurs twice in names,
// compared without case, and the 1-based positions of both occurrences.
func duplicateColumn(names []string) (name string, first, second int, dup bool) {
	seen := map[string]int{}
	for i, n := range names {
		k := strings.ToLower(n)
		if j, ok := seen[k]; ok {
			return n, j + 1, i + 1, true
		}
		seen[k] = i
	}
	return "", 0, 0, false
}

// conformSQL wraps src in a SELECT giving sch's columns in order — cast to
// their types, NULL when src lacks them (created_at: now()) — followed by
// src's other columns except run and step.
func conformSQL(sch *arrow.Schema, have []string, src string) string {
	got := map[string]bool{}
	for _, c := range have {
		got[strings.ToLower(c)] = true
	}
	var sel []string
	known := map[string]bool{"run": true, "step": true}
	for _, f := range sch.Fields() {
		known[f.Name] = true
		typ := arrowio.DuckType(f.Type)
		switch {
		case got[f.Name]:
			sel = append(sel, fmt.Sprintf("CAST(q.%s AS %s) AS %s", QuoteIdent(f.Name), typ, QuoteIdent(f.Name)))
		case f.Name == "created_at":
			sel = append(sel, fmt.Sprintf("CAST(now() AS %s) AS created_at", typ))
		default:
			sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", typ, QuoteIdent(f.Name)))
		}
	}
	for _, c := range have {
		if !known[strings.ToLower(c)] {
			sel = append(sel, "q."+QuoteIdent(c))
		}
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM (" + src + ") AS q"
}

// logMetricsStage commits (name, value) rows computed in SQL to metrics.
type logMetricsStage struct{}

func (logMetricsStage) Spec() StageSpec {
	return StageSpec{
		Name: "log_metrics",
		Doc: "Run a query returning columns name (text) and value (a number) and commit its rows to the lake table " +
			"metrics (run, step, name, value, created_at), one row per scalar. Rows with a NULL name are an error; " +
			"a NULL value stays NULL. Runs on shard 0 only.",
		Args: []ArgSpec{
			{Name: "query", Type: TypeQuery, Required: true, Doc: "SELECT ... AS name, ... AS value"},
		},
		Outputs: func(Args) []string { return []string{arrowio.TableMetrics} },
	}
}

func (logMetricsStage) Run(ctx context.Context, sc *StageCtx, a Args) (Summary, error) {
	q := a.String("query")
	sub := "(" + q + ")"
	if err := sc.RequireColumns(ctx, "query", sub, "name", "value"); err != nil {
		return Summary{}, err
	}
	sel := "SELECT CAST(name AS VARCHAR) AS name, CAST(value AS DOUBLE) AS value FROM " + sub + " AS q"
	restore, err := singleThreaded(ctx, sc)
	if err != nil {
		return Summary{}, err
	}
	rr, err := sc.Engine.QueryArrow(ctx, sel)
	if err != nil {
		restore()
		return Summary{}, ClassifySQL(err, a.Pos("query"), q)
	}
	defer rr.Release()
	defer restore()
	sch := arrowio.MetricsSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	now := arrow.Timestamp(time.Now().UTC().UnixMicro())
	metrics := map[string]float64{}
	var n int64
	for rr.Next() {
		rec := rr.RecordBatch()
		names, ok1 := rec.Column(0).(stringArray)
		vals, ok2 := rec.Column(1).(*array.Float64)
		if !ok1 || !ok2 {
			return Summary{}, fmt.Errorf("jobs: log_metrics: unexpected arrow types %s, %s", rec.Column(0).DataType(), rec.Column(1).DataType())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if names.IsNull(i) {
				return Summary{}, &DataError{Pos: a.Pos("query"), Msg: "log_metrics: a row has a NULL name", Column: "name", Hint: "filter it out or coalesce(name, '...')"}
			}
			b.Field(0).(*array.StringBuilder).Append(names.Value(i))
			if vals.IsNull(i) {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.Float64Builder).Append(vals.Value(i))
				if len(metrics) < 8 {
					metrics[strings.Clone(names.Value(i))] = vals.Value(i)
				}
			}
			b.Field(2).(*array.TimestampBuilder).Append(now)
			n++
		}
	}
	if err := rr.Err(); err != nil {
		return Summary{}, ClassifySQL(err, a.Pos("query"), q)
	}
	if n == 0 {
		return Summary{Table: arrowio.TableMetrics, Skipped: true, Note: "log_metrics: query returned no rows: nothing committed"}, nil
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	out, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		return Summary{}, err
	}
	defer out.Release()
	rows, err := sc.Commit(ctx, arrowio.TableMetrics, out)
	if err != nil {
		return Summary{}, err
	}
	return Summary{Table: arrowio.TableMetrics, Rows: rows, Metrics: metrics}, nil
}

// singleThreaded makes the engine run on one thread until restore is
// called. log_metrics computes the step's metrics that way: with several
// threads DuckDB merges partial aggregates in the order threads finish,
// and with one Parquet file per shard that order follows the shards'
// timing; sums, averages and above all variances (whose merge is not
// symmetric in floating point) then differ in their last bits between two
// runs of the same sharded job. On one thread the files are read in the
// view's order (call, then shard), so a metric depends on the data only.
func singleThreaded(ctx context.Context, sc *StageCtx) (restore func(), err error) {
	var threads int64
	if err := sc.Engine.Conn().QueryRowContext(ctx, "SELECT current_setting('threads')").Scan(&threads); err != nil {
		return nil, fmt.Errorf("jobs: %s: read the thread count: %w", sc.Stage, err)
	}
	if threads <= 1 {
		return func() {}, nil
	}
	if err := sc.Engine.Exec(ctx, "SET threads = 1"); err != nil {
		return nil, fmt.Errorf("jobs: %s: %w", sc.Stage, err)
	}
	return func() {
		if err := sc.Engine.Exec(context.WithoutCancel(ctx), fmt.Sprintf("SET threads = %d", threads)); err != nil {
			sc.Log.Warn().Err(err).Int64("threads", threads).Msg("could not restore DuckDB's thread count")
		}
	}, nil
}

// stringArray is what *array.String, *array.LargeString and
// *array.StringView have in common.
type stringArray interface {
	arrow.Array
	Value(i int) string
}

// peekNonEmpty reads rr up to its first non-empty batch. It returns a reader
// replaying that batch and the rest, and empty = true when rr has no rows.
// The returned reader must be released; it does not release rr.
func peekNonEmpty(rr array.RecordReader) (array.RecordReader, bool, error) {
	for rr.Next() {
		rec := rr.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		rec.Retain()
		return &prefixReader{rr: rr, first: rec}, false, nil
	}
	if err := rr.Err(); err != nil {
		return nil, false, err
	}
	empty, _ := array.NewRecordReader(rr.Schema(), nil)
	return empty, true, nil
}

// prefixReader yields first, then the rest of rr.
type prefixReader struct {
	rr    array.RecordReader
	first arrow.RecordBatch
	cur   arrow.RecordBatch
	began bool
}

func (p *prefixReader) Retain()                        {}
func (p *prefixReader) Schema() *arrow.Schema          { return p.rr.Schema() }
func (p *prefixReader) RecordBatch() arrow.RecordBatch { return p.cur }
func (p *prefixReader) Record() arrow.RecordBatch      { return p.cur }
func (p *prefixReader) Err() error                     { return p.rr.Err() }
func (p *prefixReader) Release() {
	if p.first != nil {
		p.first.Release()
		p.first = nil
	}
}

func (p *prefixReader) Next() bool {
	if !p.began {
		p.began = true
		p.cur = p.first
		return true
	}
	if p.first != nil {
		p.first.Release()
		p.first = nil
	}
	for p.rr.Next() {
		p.cur = p.rr.RecordBatch()
		if p.cur.NumRows() > 0 {
			return true
		}
	}
	p.cur = nil
	return false
}
