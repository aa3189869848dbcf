package jobs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// Pos is a position in a job file: 1-based line and column. A zero Line
// means "no position" (for example an error found on the command line).
type Pos struct {
	File      string
	Line, Col int
}

// String renders "file:line:col", or just the file when the line is unknown.
func (p Pos) String() string {
	switch {
	case p.File == "" && p.Line == 0:
		return ""
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// UsageError is a mistake in the command line or the job file: a bad flag,
// an unknown stage or argument, a SQL syntax error. cmd/rljob maps it to exit
// code 2. Stmt, when set, is the offending statement; Hint says how to fix it.
type UsageError struct {
	Pos  Pos
	Msg  string
	Stmt string
	Hint string
	Err  error
}

func (e *UsageError) Error() string { return formatError(e.Pos, e.Msg, e.Stmt, e.Hint, e.Err) }
func (e *UsageError) Unwrap() error { return e.Err }

// DataError is a problem with the data rather than the job: a required
// column missing from an input table, a corrupt Parquet file, a malformed
// row. cmd/rljob maps it to exit code 3. Table, Column and File name the
// culprit where known.
type DataError struct {
	Pos    Pos
	Msg    string
	Table  string
	Column string
	File   string
	Stmt   string
	Hint   string
	Err    error
}

func (e *DataError) Error() string { return formatError(e.Pos, e.Msg, e.Stmt, e.Hint, e.Err) }
func (e *DataError) Unwrap() error { return e.Err }

// LockError says another runner holds the run's lock. cmd/rljob maps it to
// exit code 4. Holder is the lock file's content: pid, host, start time.
type LockError struct {
	Lock   string // path of the lock file
	Run    string
	Holder string
}

func (e *LockError) Error() string {
	h := strings.TrimSpace(e.Holder)
	if h == "" {
		h = "unknown holder"
	}
	return fmt.Sprintf("run %q is locked by another runner (%s); lock file %s\n  hint: wait for it to finish, or use another --run", e.Run, strings.ReplaceAll(h, "\n", ", "), e.Lock)
}

// formatError renders
//
//	file:line:col: msg
//	    <statement, indented>
//	  hint: ...
//	  cause: ...
func formatError(p Pos, msg, stmt, hint string, err error) string {
	var b strings.Builder
	if s := p.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	if err != nil && !strings.Contains(msg, err.Error()) {
		b.WriteString(": ")
		b.WriteString(err.Error())
	}
	if stmt = strings.TrimSpace(stmt); stmt != "" {
		b.WriteString("\n  in statement:\n")
		for _, l := range strings.Split(stmt, "\n") {
			b.WriteString("    ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
		s := strings.TrimRight(b.String(), "\n")
		b.Reset()
		b.WriteString(s)
	}
	if hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(hint)
	}
	return b.String()
}

// ExitCode maps an error to rljob's exit code. It is the one switch the CLI
// uses (and documents in --help):
//
//	0 ok, 1 internal error, 2 usage or job-file error, 3 data error, 4 lock held.
func ExitCode(err error) int {
	var (
		le *LockError
		ue *UsageError
		de *DataError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &le):
		return 4
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &de):
		return 3
	default:
		return 1
	}
}

// ClassifySQL turns an error returned by DuckDB for a statement of a job file
// (or of `rljob sql`) into a typed error with the statement's position.
//
// Parser, binder and catalog errors are the job's fault (UsageError); I/O,
// invalid-input (a corrupt Parquet file), conversion and range errors are the
// data's (DataError). Anything else stays a UsageError too: the statement is
// the user's. Interruptions (context cancelled) are returned unchanged.
func ClassifySQL(err error, pos Pos, stmt string) error {
	if err == nil {
		return nil
	}
	var ue *UsageError
	var de *DataError
	if errors.As(err, &ue) || errors.As(err, &de) {
		return err
	}
	var dk *duckdb.Error
	kind := duckdb.ErrorTypeInvalid
	msg := err.Error()
	if errors.As(err, &dk) {
		kind = dk.Type
		msg = dk.Msg
	}
	head, _, _ := strings.Cut(msg, "\n")
	at := errorPos(pos, stmt, msg)
	switch kind {
	case duckdb.ErrorTypeIO, duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeConversion,
		duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeSerialization, duckdb.ErrorTypeConstraint:
		return &DataError{Pos: at, Msg: head, Stmt: stmt, File: quotedFile(head)}
	case duckdb.ErrorTypeInterrupt:
		return err
	}
	if kind == duckdb.ErrorTypeInvalid && strings.Contains(msg, "context canceled") {
		return err
	}
	hint := ""
	if _, rest, ok := strings.Cut(msg, "\nDid you mean "); ok {
		hint = "did you mean " + strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0])
	}
	return &UsageError{Pos: at, Msg: head, Stmt: stmt, Hint: hint}
}

// quotedFile returns the first '...' quoted path in a DuckDB message such as
// "No magic bytes found at end of file '/lake/t/x.parquet'".
func quotedFile(msg string) string {
	i := strings.Index(msg, "'")
	if i < 0 {
		return ""
	}
	j := strings.Index(msg[i+1:], "'")
	if j < 0 {
		return ""
	}
	f := msg[i+1 : i+1+j]
	if strings.Contains(f, "/") || strings.HasSuffix(f, ".parquet") {
		return f
	}
	return ""
}

// errorPos refines the statement's start position with DuckDB's
// "LINE n: <text>\n        ^" marker when the message has one. The marker's
// line is relative to the statement; DuckDB may elide the start of a long
// line with "...", so the displayed text is searched for in the real line.
func errorPos(start Pos, stmt, msg string) Pos {
	i := strings.Index(msg, "\nLINE ")
	if i < 0 {
		if strings.Contains(msg, "at end of input") && stmt != "" {
			lines := strings.Split(strings.TrimRight(stmt, " \t\n;"), "\n")
			p := start
			p.Line = start.Line + len(lines) - 1
			if len(lines) == 1 {
				p.Col = start.Col + len(lines[0])
			} else {
				p.Col = len(lines[len(lines)-1]) + 1
			}
			return p
		}
		return start
	}
	rest := msg[i+1:]
	var n int
	if _, err := fmt.Sscanf(rest, "LINE %d:", &n); err != nil || n < 1 {
		return start
	}
	shown, caretLine, ok := strings.Cut(rest, "\n")
	if !ok {
		return start
	}
	prefix := fmt.Sprintf("LINE %d: ", n)
	caret := strings.Index(caretLine, "^")
	if caret < len(prefix) || !strings.HasPrefix(shown, prefix) {
		return start
	}
	shown = shown[len(prefix):]
	col := caret - len(prefix) // 0-based in the shown text
	lines := strings.Split(stmt, "\n")
	if n > len(lines) {
		return start
	}
	real := lines[n-1]
	if strings.HasPrefix(shown, "...") {
		if k := strings.Index(real, strings.TrimSuffix(shown[3:], "...")); k >= 0 {
			col = k + col - 3
		}
	}
	p := start
	p.Line = start.Line + n - 1
	if n == 1 {
		p.Col = start.Col + col
	} else {
		p.Col = col + 1
	}
	return p
}
