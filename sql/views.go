package sql

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/arrowio"
)

// knownTables get an empty typed view when the lake has no file for them.
var knownTables = []string{arrowio.TablePrompts, arrowio.TableRollouts, arrowio.TableRewards, arrowio.TableMetrics}

// hiveKeys are the partition keys whose types are pinned (run stays a
// string even when it looks like a number) and which lead each view.
var hiveKeys = []struct{ name, typ string }{{arrowio.KeyRun, "VARCHAR"}, {arrowio.KeyStep, "BIGINT"}}

// TableErrorPrefix starts the message a broken table's view raises when a
// query reads it, so callers can tell a data error from a SQL error.
const TableErrorPrefix = "rljob: lake table "

// TableError is a lake table DuckDB could not open. Err carries DuckDB's
// message, which names the offending file.
type TableError struct {
	Table string
	Dir   string // the table folder
	Err   error
}

func (e *TableError) Error() string {
	return TableErrorPrefix + e.Table + " unreadable: " + firstLine(e.Err.Error())
}

func (e *TableError) Unwrap() error { return e.Err }

// IsTableError reports whether err is a *TableError or a query error raised
// by the view of an unreadable lake table (a data error, not a SQL error).
func IsTableError(err error) bool {
	var te *TableError
	return err != nil && (errors.As(err, &te) || strings.Contains(err.Error(), TableErrorPrefix))
}

// TableErrors returns the tables the last Open or Refresh could not read.
// Their views raise the same message when queried; other tables work.
func (e *Engine) TableErrors() []*TableError { return slices.Clone(e.tableErrors) }

// Refresh re-creates the lake views (new partitions, new columns, tables that
// appeared or got their first files) and the this_step_<table> views, and
// loads the macro library the first time. Without a snapshot (SetSnapshot) a view reads every Parquet
// file of its folder; with one it reads the files the snapshot shows.
// Only a failure of DuckDB itself or of the library is returned; unreadable
// tables are reported by TableErrors.
func (e *Engine) Refresh(ctx context.Context) error {
	tables, err := e.scanTables()
	if err != nil {
		return err
	}
	views := map[string]bool{}
	e.tableErrors = nil
	for _, t := range tables {
		views[t.name] = true
		if err := e.createView(ctx, t.name, t, t.selectSQL()); err != nil {
			return err
		}
	}
	if err := e.emptyKnownViews(ctx, "", views); err != nil {
		return err
	}
	for name := range e.lakeViews {
		if !views[name] {
			if err := e.Exec(ctx, "DROP VIEW IF EXISTS main."+QuoteIdent(name)); err != nil {
				return fmt.Errorf("sql: refresh: drop vanished table %s: %w", name, err)
			}
		}
	}
	e.lakeViews = views
	if err := e.refreshThisStep(ctx, tables); err != nil {
		return err
	}
	if err := e.refreshSummary(ctx); err != nil {
		return err
	}
	if e.libLoaded {
		// DuckDB binds a view's query when it is read, so the library's
		// views (scored, prompt_stats, ...) follow the re-created lake views.
		return nil
	}
	if err := e.loadLib(ctx); err != nil {
		return err
	}
	e.libLoaded = true
	return nil
}

// createView creates view name over t's files with sel; a table DuckDB cannot
// read becomes a view raising the error, recorded in TableErrors.
func (e *Engine) createView(ctx context.Context, name string, t lakeTable, sel string) error {
	_, err := e.conn.ExecContext(ctx, "CREATE OR REPLACE VIEW "+QuoteIdent(name)+" AS "+sel)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("sql: refresh: %w", ctx.Err())
	}
	te := &TableError{Table: t.name, Dir: t.dir, Err: err}
	e.tableErrors = append(e.tableErrors, te)
	if err := e.Exec(ctx, "CREATE OR REPLACE VIEW "+QuoteIdent(name)+" AS "+errorViewSQL(t.name, te.Error())); err != nil {
		return fmt.Errorf("sql: refresh: error view for %s: %w", name, err)
	}
	return nil
}

// emptyKnownViews gives each known table without a view in have an empty
// typed view named prefix+table.
func (e *Engine) emptyKnownViews(ctx context.Context, prefix string, have map[string]bool) error {
	for _, name := range knownTables {
		if have[name] {
			continue
		}
		have[name] = true
		sel, err := emptyViewSQL(name)
		if err != nil {
			return fmt.Errorf("sql: refresh: empty view %s: %w", name, err)
		}
		if err := e.Exec(ctx, "CREATE OR REPLACE VIEW "+QuoteIdent(prefix+name)+" AS "+sel); err != nil {
			return fmt.Errorf("sql: refresh: empty view %s: %w", prefix+name, err)
		}
	}
	return nil
}

// lakeTable is one table folder with at least one Parquet file.
type lakeTable struct {
	name string
	dir  string          // absolute folder
	keys map[string]bool // Hive keys (k=v path components) seen in file paths
	// With a snapshot: the files the view reads (files), this step's files
	// (thisStep), and every file (all, for the schema of an empty view).
	snap     bool
	files    []string
	thisStep []string
	all      []string
	// Segments (arrowio.ListTable) the view reads in place of the step
	// folders they cover: segs visible, allSegs for the schema.
	segs    []string
	allSegs []string
}

// selectSQL reads the table's files (every one, or the snapshot's) and
// segments, run and step first. A snapshot that shows none of them gives an
// empty view with the columns of all of them.
func (t lakeTable) selectSQL() string {
	if !t.snap {
		return t.readSQL(QuoteString(filepath.ToSlash(t.dir)+"/**/*.parquet"), false)
	}
	if len(t.files) == 0 && len(t.segs) == 0 {
		return t.viewSQL(t.all, t.allSegs, true)
	}
	return t.viewSQL(t.files, t.segs, false)
}

// viewSQL reads the Parquet files raw (Hive-partitioned) and the segment
// files segs (run and step are columns there), UNION ALL BY NAME; empty
// when none is set.
func (t lakeTable) viewSQL(raw, segs []string, none bool) string {
	if len(segs) == 0 {
		return t.readSQL(fileList(raw), none)
	}
	where := ""
	if none {
		where = " WHERE false"
	}
	from := "read_parquet(" + fileList(segs) + ", union_by_name = true)"
	if len(raw) > 0 {
		from = "(SELECT * FROM " + t.rawFrom(fileList(raw)) + " UNION ALL BY NAME SELECT * FROM " + from + ")"
	}
	return "SELECT " + QuoteIdent(arrowio.KeyRun) + ", " + QuoteIdent(arrowio.KeyStep) + ", * EXCLUDE (" +
		QuoteIdent(arrowio.KeyRun) + ", " + QuoteIdent(arrowio.KeyStep) + ") FROM " + from + where
}

// readSQL is the SELECT over read_parquet(src), empty when none.
func (t lakeTable) readSQL(src string, none bool) string {
	var lead []string
	for _, k := range hiveKeys {
		if t.keys[k.name] {
			lead = append(lead, QuoteIdent(k.name))
		}
	}
	from := t.rawFrom(src)
	where := ""
	if none {
		where = " WHERE false"
	}
	if len(lead) == 0 {
		return "SELECT * FROM " + from + where
	}
	return "SELECT " + strings.Join(lead, ", ") + ", * EXCLUDE (" + strings.Join(lead, ", ") + ") FROM " + from + where
}

// rawFrom is read_parquet over src, Hive-partitioned, run and step typed.
func (t lakeTable) rawFrom(src string) string {
	var types []string
	for _, k := range hiveKeys {
		if t.keys[k.name] {
			types = append(types, QuoteString(k.name)+": "+k.typ)
		}
	}
	from := "read_parquet(" + src + ", hive_partitioning = true, union_by_name = true"
	if len(types) > 0 {
		from += ", hive_types = {" + strings.Join(types, ", ") + "}"
	}
	return from + ")"
}

func fileList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = QuoteString(filepath.ToSlash(p))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// skipFolder reports folders under the lake root that are not tables:
// staging, locks, checkpoints (safetensors, not Parquet), hidden folders.
func skipFolder(name string) bool {
	return name == arrowio.TableCheckpoints || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")
}

// emptyViewSQL is a typed zero-row SELECT with the view schema of a known
// table: run VARCHAR, step BIGINT, then the arrowio file columns.
func emptyViewSQL(table string) (string, error) {
	cols, err := viewColumns(table)
	if err != nil {
		return "", err
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = "CAST(NULL AS " + c.typ + ") AS " + QuoteIdent(c.name)
	}
	return "SELECT " + strings.Join(parts, ", ") + " WHERE false", nil
}

// errorViewSQL is a view that raises msg whenever a query reads it, whatever
// it filters or projects: every column is derived from the error() call and a
// WHERE on it keeps the optimiser from pruning it. Known tables keep their
// typed columns so the library's views still bind.
func errorViewSQL(table, msg string) string {
	raise := "(SELECT error(" + QuoteString(msg) + ") AS e) AS broken WHERE broken.e IS NULL"
	cols, err := viewColumns(table)
	if err != nil {
		return "SELECT CAST(broken.e AS VARCHAR) AS error FROM " + raise
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = "CAST(broken.e AS " + c.typ + ") AS " + QuoteIdent(c.name)
	}
	return "SELECT " + strings.Join(parts, ", ") + " FROM " + raise
}

type column struct{ name, typ string }

// viewColumns lists the columns a reader of a known table sees.
func viewColumns(table string) ([]column, error) {
	file, ok := arrowio.SchemaFor(table)
	if !ok {
		return nil, fmt.Errorf("no schema for table %s", table)
	}
	sch := arrowio.ViewSchema(file)
	cols := make([]column, sch.NumFields())
	for i, f := range sch.Fields() {
		typ, err := duckType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		cols[i] = column{f.Name, typ}
	}
	return cols, nil
}

// duckType spells an Arrow type the way DuckDB reads it back from Parquet.
func duckType(t arrow.DataType) (string, error) {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "VARCHAR", nil
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
		return "BLOB", nil
	case arrow.BOOL:
		return "BOOLEAN", nil
	case arrow.INT8:
		return "TINYINT", nil
	case arrow.INT16:
		return "SMALLINT", nil
	case arrow.INT32:
		return "INTEGER", nil
	case arrow.INT64:
		return "BIGINT", nil
	case arrow.UINT8:
		return "UTINYINT", nil
	case arrow.UINT16:
		return "USMALLINT", nil
	case arrow.UINT32:
		return "UINTEGER", nil
	case arrow.UINT64:
		return "UBIGINT", nil
	case arrow.FLOAT32:
		return "FLOAT", nil
	case arrow.FLOAT64:
		return "DOUBLE", nil
	case arrow.DATE32:
		return "DATE", nil
	case arrow.TIMESTAMP:
		ts := t.(*arrow.TimestampType)
		if ts.TimeZone != "" {
			return "TIMESTAMPTZ", nil // Parquet isAdjustedToUTC, any unit
		}
		switch ts.Unit {
		case arrow.Second:
			return "TIMESTAMP_S", nil
		case arrow.Millisecond:
			return "TIMESTAMP_MS", nil
		case arrow.Nanosecond:
			return "TIMESTAMP_NS", nil
		}
		return "TIMESTAMP", nil
	case arrow.LIST, arrow.LARGE_LIST:
		elem, err := duckType(t.(arrow.ListLikeType).Elem())
		if err != nil {
			return "", err
		}
		return elem + "[]", nil
	case arrow.STRUCT:
		st := t.(*arrow.StructType)
		parts := make([]string, st.NumFields())
		for i, f := range st.Fields() {
			ft, err := duckType(f.Type)
			if err != nil {
				return "", err
			}
			parts[i] = QuoteIdent(f.Name) + " " + ft
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")", nil
	}
	return "", fmt.Errorf("arrow type %s has no DuckDB spelling here", t)
}

// firstLine drops DuckDB's "LINE 1: ..." caret context from a message.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
