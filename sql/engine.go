package sql

import (
	"context"
	stdsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/rljob/rljob/arrowio"
)

// Engine is an in-memory DuckDB pinned to one connection, with the lake's
// tables as views and the sql/lib macro library loaded. See the package doc.
type Engine struct {
	lake      string // absolute lake root; "" when opened without a lake
	connector *duckdb.Connector
	db        *stdsql.DB
	conn      *stdsql.Conn
	arrow     *duckdb.Arrow

	lakeViews   map[string]bool // views created from lake folders by the last Refresh
	tableErrors []*TableError
	snap        *Snapshot // what the views show; nil: every file
	lc          *arrowio.ListCache
	libLoaded   bool // the macro library is loaded (once, by the first Refresh)
}

// Open starts an in-memory DuckDB on one connection, creates a view per lake
// table folder under lakeRoot (empty typed views for known tables that have
// no files yet) and loads the macro library.
//
// lakeRoot "" opens an engine without a lake: the known tables are empty
// views. A lakeRoot that does not exist is an error (arrowio.OpenLake creates
// one). Tables DuckDB cannot read do not make Open fail; see TableErrors.
func Open(ctx context.Context, lakeRoot string) (*Engine, error) {
	return OpenAt(ctx, lakeRoot, nil)
}

// OpenAt is Open with the views built under snapshot snap from the start
// (nil: every file), so a job runner does not list the whole lake once
// more before its first step.
func OpenAt(ctx context.Context, lakeRoot string, snap *Snapshot) (*Engine, error) {
	e := &Engine{lakeViews: map[string]bool{}, snap: snap}
	if lakeRoot != "" {
		abs, err := filepath.Abs(lakeRoot)
		if err != nil {
			return nil, fmt.Errorf("sql: open lake %s: %w", lakeRoot, err)
		}
		e.lake = abs
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("sql: open duckdb: %w", err)
	}
	e.connector = connector
	e.db = stdsql.OpenDB(connector)
	e.conn, err = e.db.Conn(ctx)
	if err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("sql: open duckdb connection: %w", err)
	}
	err = e.conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		a, err := duckdb.NewArrowFromConn(dconn)
		e.arrow = a
		return err
	})
	if err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("sql: open duckdb arrow interface: %w", err)
	}
	// Timestamps in UTC: lake timestamps are timestamp[us, tz=UTC], and Arrow
	// results then carry tz "UTC" (not the host's zone), which arrowio's
	// schemas require.
	if err := e.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		_ = e.Close()
		return nil, err
	}
	if err := e.Refresh(ctx); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// Lake returns the absolute lake root the engine reads ("" for none).
func (e *Engine) Lake() string { return e.lake }

// Conn returns the engine's single connection. Statements run on it see the
// lake views, the macros, the variables and registered UDFs.
func (e *Engine) Conn() *stdsql.Conn { return e.conn }

// Exec runs one or more statements; args bind to the last one.
func (e *Engine) Exec(ctx context.Context, query string, args ...any) error {
	if _, err := e.conn.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("sql: exec: %w", err)
	}
	return nil
}

// QueryArrow runs a query and returns its result as Arrow record batches,
// one per DuckDB data chunk (2048 rows); duckdb-go materialises the result
// in DuckDB before the first batch. The caller must Release the
// reader, and should do so before running the next statement.
func (e *Engine) QueryArrow(ctx context.Context, query string, args ...any) (array.RecordReader, error) {
	rr, err := e.arrow.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sql: query: %w", err)
	}
	return rr, nil
}

// RegisterArrowView exposes rr to SQL as the view main.name (replacing any
// view of that name, so keep clear of lake table names). DuckDB
// reads the stream once: the first query that scans the view consumes it,
// so materialise it (CREATE TABLE t AS FROM name) to read it twice. The
// engine holds its own reference to rr; release drops the view and frees
// that reference, and must be called before rr's memory goes away.
func (e *Engine) RegisterArrowView(name string, rr array.RecordReader) (release func(), err error) {
	if name == "" {
		return nil, errors.New("sql: register arrow view: empty name")
	}
	rel, err := e.arrow.RegisterView(rr, name)
	if err != nil {
		return nil, fmt.Errorf("sql: register arrow view %s: %w", name, err)
	}
	done := false
	return func() {
		if done {
			return
		}
		done = true
		// Drop the view first: a later scan would read freed memory.
		_, _ = e.conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS main."+QuoteIdent(name))
		rel()
	}, nil
}

// RegisterScalarUDF registers a scalar function on the engine's connection
// (a thin wrapper over duckdb.RegisterScalarUDF, which takes ownership of f).
func (e *Engine) RegisterScalarUDF(name string, f duckdb.ScalarFunc) error {
	if err := duckdb.RegisterScalarUDF(e.conn, name, f); err != nil {
		return fmt.Errorf("sql: register scalar function %s: %w", name, err)
	}
	return nil
}

// RegisterScalarUDFSet registers overloads of one scalar function name
// (e.g. extract_answer(text) and extract_answer(text, style)).
func (e *Engine) RegisterScalarUDFSet(name string, fs ...duckdb.ScalarFunc) error {
	if err := duckdb.RegisterScalarUDFSet(e.conn, name, fs...); err != nil {
		return fmt.Errorf("sql: register scalar function set %s: %w", name, err)
	}
	return nil
}

// SetVariable runs SET VARIABLE name = value, read in SQL with
// getvariable('name'). value is rendered as a typed SQL literal: nil → NULL,
// string → VARCHAR, bool → BOOLEAN, Go integers → BIGINT (UBIGINT for uint64
// above MaxInt64), float32/float64 → DOUBLE (NaN and ±Inf included),
// time.Time → TIMESTAMPTZ, []string / []int64 / []float64 → lists.
// (DuckDB does not take prepared parameters in SET statements.)
func (e *Engine) SetVariable(ctx context.Context, name string, value any) error {
	if name == "" {
		return errors.New("sql: set variable: empty name")
	}
	lit, err := sqlLiteral(value)
	if err != nil {
		return fmt.Errorf("sql: set variable %s: %w", name, err)
	}
	if _, err := e.conn.ExecContext(ctx, "SET VARIABLE "+QuoteIdent(name)+" = "+lit); err != nil {
		return fmt.Errorf("sql: set variable %s: %w", name, err)
	}
	return nil
}

// Close closes the connection and the database. Arrow views must have been
// released before.
func (e *Engine) Close() error {
	var errs []error
	if e.conn != nil {
		errs = append(errs, e.conn.Close())
		e.conn = nil
	}
	if e.db != nil {
		errs = append(errs, e.db.Close())
		e.db = nil
	}
	// DB.Close closes the connector too (it implements io.Closer).
	e.connector = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sql: close: %w", err)
	}
	return nil
}

// QuoteIdent quotes a DuckDB identifier, doubling double quotes.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteString quotes a DuckDB string literal, doubling single quotes.
func QuoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlLiteral renders v as a typed DuckDB literal (see SetVariable).
func sqlLiteral(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return QuoteString(x), nil
	case bool:
		if x {
			return "TRUE", nil
		}
		return "FALSE", nil
	case int:
		return intLit(int64(x)), nil
	case int8:
		return intLit(int64(x)), nil
	case int16:
		return intLit(int64(x)), nil
	case int32:
		return intLit(int64(x)), nil
	case int64:
		return intLit(x), nil
	case uint:
		return uintLit(uint64(x)), nil
	case uint8:
		return uintLit(uint64(x)), nil
	case uint16:
		return uintLit(uint64(x)), nil
	case uint32:
		return uintLit(uint64(x)), nil
	case uint64:
		return uintLit(x), nil
	case float32:
		return floatLit(float64(x)), nil
	case float64:
		return floatLit(x), nil
	case time.Time:
		return "CAST(" + QuoteString(x.UTC().Format("2006-01-02 15:04:05.999999")+"+00") + " AS TIMESTAMPTZ)", nil
	case []string:
		return listLit(len(x), func(i int) string { return QuoteString(x[i]) }, "VARCHAR[]"), nil
	case []int64:
		return listLit(len(x), func(i int) string { return strconv.FormatInt(x[i], 10) }, "BIGINT[]"), nil
	case []float64:
		return listLit(len(x), func(i int) string { return floatLit(x[i]) }, "DOUBLE[]"), nil
	}
	return "", fmt.Errorf("unsupported value type %T", v)
}

func intLit(x int64) string { return "CAST(" + strconv.FormatInt(x, 10) + " AS BIGINT)" }

func uintLit(x uint64) string {
	if x <= math.MaxInt64 {
		return intLit(int64(x))
	}
	return "CAST(" + strconv.FormatUint(x, 10) + " AS UBIGINT)"
}

func floatLit(x float64) string {
	switch {
	case math.IsNaN(x):
		return "CAST('nan' AS DOUBLE)"
	case math.IsInf(x, 1):
		return "CAST('inf' AS DOUBLE)"
	case math.IsInf(x, -1):
		return "CAST('-inf' AS DOUBLE)"
	}
	return "CAST(" + QuoteString(strconv.FormatFloat(x, 'g', -1, 64)) + " AS DOUBLE)"
}

func listLit(n int, elem func(i int) string, typ string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = elem(i)
	}
	return "CAST([" + strings.Join(parts, ", ") + "] AS " + typ + ")"
}
