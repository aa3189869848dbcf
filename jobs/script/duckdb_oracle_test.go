package script

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2/mapping"
)

// duckOracle counts statements with DuckDB's own parser
// (duckdb_extract_statements through duckdb-go's mapping package, the call
// duckdb-go makes for multi-statement queries).
type duckOracle struct {
	mu   sync.Mutex
	db   mapping.Database
	conn mapping.Connection
}

var (
	oracleOnce sync.Once
	oracle     *duckOracle
	oracleErr  string
)

// duckDB returns the process-wide oracle connection (an in-memory database).
func duckDB(t testing.TB) *duckOracle {
	t.Helper()
	oracleOnce.Do(func() {
		o := &duckOracle{}
		if mapping.Open(":memory:", &o.db) == mapping.StateError {
			oracleErr = "duckdb open failed"
			return
		}
		if mapping.Connect(o.db, &o.conn) == mapping.StateError {
			oracleErr = "duckdb connect failed"
			return
		}
		oracle = o
	})
	if oracle == nil {
		t.Fatal(oracleErr)
	}
	return oracle
}

// count returns DuckDB's statement count for q, or ok=false with DuckDB's
// message when DuckDB cannot parse q. An input without statements (only
// whitespace and comments) gives 0, ok=true.
func (o *duckOracle) count(q string) (n int, ok bool, msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var stmts mapping.ExtractedStatements
	c := mapping.ExtractStatements(o.conn, q, &stmts)
	defer mapping.DestroyExtracted(&stmts)
	if c == 0 {
		if m := mapping.ExtractStatementsError(stmts); m != "" {
			return 0, false, m
		}
		return 0, true, ""
	}
	return int(c), true, ""
}

// oracleUsable reports whether DuckDB sees the same bytes as Go: the C API
// takes a NUL-terminated string, so inputs with NUL are cut short there.
func oracleUsable(s string) bool { return !strings.ContainsRune(s, 0) && utf8.ValidString(s) }
