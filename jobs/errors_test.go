package jobs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
)

func TestErrorPos(t *testing.T) {
	start := Pos{File: "j.sql", Line: 10, Col: 5}
	tests := []struct {
		name, stmt, msg string
		want            Pos
	}{
		{name: "no marker", stmt: "SELECT 1", msg: "Binder Error: x", want: start},
		{name: "first line", stmt: "SELCT 1", msg: "Parser Error: syntax error at or near \"SELCT\"\n\nLINE 1: SELCT 1\n        ^", want: Pos{"j.sql", 10, 5}},
		{name: "mid first line", stmt: "SELECT * FROM nosuch", msg: "Catalog Error: Table with name nosuch does not exist!\n\nLINE 1: SELECT * FROM nosuch\n                      ^", want: Pos{"j.sql", 10, 19}},
		{name: "third line", stmt: "SELECT 1,\n  2\n  FROM x WHERE", msg: "Parser Error: syntax error at or near \"WHERE\"\n\nLINE 3:   FROM x WHERE\n                 ^", want: Pos{"j.sql", 12, 10}},
		{name: "end of input", stmt: "SELECT (1,\n  2", msg: "Parser Error: syntax error at end of input", want: Pos{"j.sql", 11, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorPos(start, tc.stmt, tc.msg); got != tc.want {
				t.Errorf("errorPos = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{&UsageError{Msg: "x"}, 2},
		{fmt.Errorf("wrapped: %w", &DataError{Msg: "x"}), 3},
		{&LockError{Run: "r"}, 4},
		{ClassifySQL(&duckdb.Error{Type: duckdb.ErrorTypeParser, Msg: "Parser Error: x"}, Pos{}, ""), 2},
		{ClassifySQL(&duckdb.Error{Type: duckdb.ErrorTypeInvalidInput, Msg: "Invalid Input Error: No magic bytes found at end of file '/l/p/x.parquet'"}, Pos{}, ""), 3},
	}
	for _, tc := range tests {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	var de *DataError
	err := ClassifySQL(&duckdb.Error{Type: duckdb.ErrorTypeInvalidInput, Msg: "Invalid Input Error: No magic bytes found at end of file '/l/p/x.parquet'"}, Pos{}, "")
	if !errors.As(err, &de) || de.File != "/l/p/x.parquet" {
		t.Errorf("DataError.File = %+v", de)
	}
}
