package sql

import (
	"errors"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// ErrorKind sorts DuckDB's errors for callers that do not see DuckDB's
// types: who is at fault, the statement or the data.
type ErrorKind int

const (
	KindOther     ErrorKind = iota // not a DuckDB error, or one of the statement (binder, catalog, ...)
	KindSyntax                     // the parser's "syntax error" / "unterminated ..."
	KindParser                     // another parser error (e.g. a binding problem DuckDB reports while parsing)
	KindData                       // the data: I/O, invalid input, conversion, out of range, constraint
	KindInterrupt                  // the query was interrupted
)

// Classify returns the kind of err and DuckDB's own message (err.Error()
// for an error that is not DuckDB's).
func Classify(err error) (ErrorKind, string) {
	var dk *duckdb.Error
	if !errors.As(err, &dk) {
		return KindOther, err.Error()
	}
	switch dk.Type {
	case duckdb.ErrorTypeParser, duckdb.ErrorTypeSyntax:
		if strings.Contains(dk.Msg, "syntax error") || strings.Contains(dk.Msg, "unterminated") {
			return KindSyntax, dk.Msg
		}
		return KindParser, dk.Msg
	case duckdb.ErrorTypeIO, duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeConversion,
		duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeSerialization, duckdb.ErrorTypeConstraint:
		return KindData, dk.Msg
	case duckdb.ErrorTypeInterrupt:
		return KindInterrupt, dk.Msg
	}
	return KindOther, dk.Msg
}

// IsDuckDBError reports whether err wraps an error DuckDB raised.
func IsDuckDBError(err error) bool {
	var dk *duckdb.Error
	return errors.As(err, &dk)
}
