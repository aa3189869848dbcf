// Package script splits rljob job files (DuckDB SQL scripts, DESIGN.md §2)
// into statements and recognises the `CALL stage(name := value, ...)`
// statements that the runner executes in Go.
//
// The splitter follows DuckDB's own lexer (third_party/libpg_query/scan.l)
// for everything that can hide a semicolon: single-quoted strings with
// doubled-quote escapes, E'...' strings with backslash escapes, B'...',
// X'...', N'...' and U&'...' strings, double-quoted identifiers with "" escapes, "--" line comments,
// nested /* */ block comments, and $$...$$ / $tag$...$tag$ dollar quotes (a
// '$' inside an identifier, as in a$$, does not start one). FuzzSplit checks
// it against DuckDB's duckdb_extract_statements.
//
// Positions: Line and Col are 1-based; Col counts Unicode code points from
// the start of the line (an invalid UTF-8 byte counts as one), and lines end
// at '\n' (a '\r' before it is part of the line's end, so CRLF files number
// lines as editors do). Offsets are byte offsets into the source.
package script

import (
	"fmt"
	"unicode/utf8"
)

// Statement is one non-empty statement of a job file.
type Statement struct {
	// Text runs from the first to the last significant character of the
	// statement: leading and trailing whitespace and comments and the
	// terminating ';' are not included; comments inside are kept. Text is
	// exactly Source[Offset : Offset+len(Text)].
	Text string
	// Line and Col locate Text's first character (1-based, Col in code points).
	Line, Col int
	// Offset is the byte offset of Text in the source.
	Offset int
	// Index is the 0-based position among the non-empty statements.
	Index int
}

// SyntaxError is a lexical error in a job file: an unterminated string,
// quoted identifier, block comment or dollar quote. Line and Col (1-based,
// Col in code points) and Offset (bytes) point at the opening quote or "/*".
type SyntaxError struct {
	Line, Col int
	Offset    int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("script: %d:%d: %s", e.Line, e.Col, e.Msg)
}

// Split splits a job file into its non-empty statements, in order.
// Statements end at a ';' outside quotes and comments, or at the end of the
// input; statements holding only whitespace and comments are dropped. The
// only errors are *SyntaxError values for unterminated constructs.
func Split(src string) ([]Statement, error) {
	var (
		out        []Statement
		lx         = lexer{src: src}
		first      = -1 // byte offset of the current statement's first significant token
		last       = -1 // end of its last significant token
		lineStarts = lineIndex(src)
	)
	flush := func() {
		if first >= 0 {
			line, col := position(src, lineStarts, first)
			out = append(out, Statement{Text: src[first:last], Line: line, Col: col, Offset: first, Index: len(out)})
		}
		first, last = -1, -1
	}
	for {
		tok, ok, lerr := lx.next()
		if lerr != nil {
			line, col := position(src, lineStarts, lerr.at)
			return nil, &SyntaxError{Line: line, Col: col, Offset: lerr.at, Msg: lerr.msg}
		}
		if !ok {
			break
		}
		switch tok.kind {
		case tokSpace:
		case tokSemicolon:
			flush()
		default:
			if first < 0 {
				first = tok.start
			}
			last = tok.end
		}
	}
	flush()
	return out, nil
}

// lineIndex returns the byte offsets at which lines start.
func lineIndex(src string) []int {
	starts := []int{0}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// position converts a byte offset into a 1-based line and a 1-based column
// in code points.
func position(src string, lineStarts []int, off int) (line, col int) {
	// Binary search for the last line start <= off.
	lo, hi := 0, len(lineStarts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if lineStarts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1, utf8.RuneCountInString(src[lineStarts[lo]:off]) + 1
}

// Position returns the 1-based line and column (in code points) of byte
// offset off of the statement's Text, as a position in the job file the
// statement came from. Offsets past the end of Text are clamped to it.
func (st Statement) Position(off int) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > len(st.Text) {
		off = len(st.Text)
	}
	line, col = st.Line, st.Col
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	start := 0
	for i := 0; i < off; i++ {
		if st.Text[i] == '\n' {
			line++
			start = i + 1
			col = 1
		}
	}
	return line, col + utf8.RuneCountInString(st.Text[start:off])
}
