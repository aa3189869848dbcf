package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/spf13/pflag"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/jobs/script"
	rsql "github.com/rljob/rljob/sql"
)

func init() {
	o := &sqlFlags{}
	register(&command{
		name:  "sql",
		usage: "[QUERY | -f FILE] [--format table|csv|json|parquet] [-o FILE] [--lake DIR]",
		short: "run SQL over the lake's views and macros; print the last statement's result",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVarP(&o.file, "file", "f", "", "read the SQL from FILE ('-' = stdin)")
			fs.StringVar(&o.format, "format", "table", "output format: table (aligned text), csv (with header), json (one object per line), parquet")
			fs.StringVarP(&o.out, "output", "o", "", "write the result to FILE instead of stdout")
		},
		run: o.runCmd,
	})
}

type sqlFlags struct {
	file, format, out string
}

// checkSQLArgs validates the arguments of `rljob sql` and returns the SQL
// source and the name errors are reported against.
func checkSQLArgs(args []string, file, format string, readFile func(string) ([]byte, error), stdin io.Reader) (src, name string, err error) {
	switch format {
	case "table", "csv", "json", "parquet":
	default:
		return "", "", &jobs.UsageError{Msg: fmt.Sprintf("bad --format %q", format), Hint: "one of table, csv, json, parquet"}
	}
	switch {
	case file != "" && len(args) > 0:
		return "", "", &jobs.UsageError{Msg: "give a QUERY or -f FILE, not both"}
	case len(args) > 1:
		return "", "", &jobs.UsageError{Msg: fmt.Sprintf("sql takes one QUERY argument, got %d", len(args)), Hint: `quote the query: rljob sql "SELECT ..."`}
	case len(args) == 1:
		return args[0], "<query>", nil
	case file == "-":
		b, err := io.ReadAll(stdin)
		return string(b), "<stdin>", err
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return "", "", &jobs.UsageError{Msg: fmt.Sprintf("cannot read SQL file %s", file), Err: err}
		}
		return string(b), file, nil
	}
	return "", "", &jobs.UsageError{Msg: "no query given", Hint: `rljob sql "SELECT * FROM metrics" or rljob sql -f query.sql`}
}

func (o *sqlFlags) runCmd(ctx context.Context, e *env, args []string) error {
	src, name, err := checkSQLArgs(args, o.file, o.format, os.ReadFile, e.stdin)
	if err != nil {
		return err
	}
	if o.format == "parquet" && o.out == "" && e.stdoutTTY {
		return &jobs.UsageError{Msg: "--format parquet writes binary: give -o FILE or redirect stdout"}
	}
	stmts, err := script.Split(src)
	if err != nil {
		if se, ok := err.(*script.SyntaxError); ok {
			return &jobs.UsageError{Pos: jobs.Pos{File: name, Line: se.Line, Col: se.Col}, Msg: se.Msg}
		}
		return err
	}
	if len(stmts) == 0 {
		return &jobs.UsageError{Msg: "no SQL statement in " + name}
	}
	if err := checkLakeFlag(e.g.lake, true); err != nil {
		return err
	}
	eng, err := rsql.Open(ctx, e.g.lake)
	if err != nil {
		return fmt.Errorf("open engine on %s: %w", e.g.lake, err)
	}
	defer eng.Close()
	for _, te := range eng.TableErrors() {
		e.log.Warn().Msg(te.Error())
	}
	if err := jobs.RegisterUDFs(eng); err != nil {
		return err
	}
	for _, st := range stmts[:len(stmts)-1] {
		if err := eng.Exec(ctx, st.Text); err != nil {
			return jobs.ClassifySQL(err, jobs.Pos{File: name, Line: st.Line, Col: st.Col}, st.Text)
		}
	}
	last := stmts[len(stmts)-1]
	rr, err := eng.QueryArrow(ctx, last.Text)
	if err != nil {
		return jobs.ClassifySQL(err, jobs.Pos{File: name, Line: last.Line, Col: last.Col}, last.Text)
	}
	defer rr.Release()
	w := e.stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return &jobs.UsageError{Msg: "cannot create output file", Err: err}
		}
		defer f.Close()
		w = f
	}
	if err := writeResult(w, o.format, rr); err != nil {
		return jobs.ClassifySQL(err, jobs.Pos{File: name, Line: last.Line, Col: last.Col}, last.Text)
	}
	if f, ok := w.(*os.File); ok && o.out != "" {
		return f.Close()
	}
	return nil
}

// writeResult writes every batch of rr in format.
func writeResult(w io.Writer, format string, rr array.RecordReader) error {
	switch format {
	case "parquet":
		_, err := arrowio.WriteParquet(w, rr.Schema(), rr)
		return err
	case "json":
		for rr.Next() {
			if err := writeJSONRows(w, rr.RecordBatch()); err != nil {
				return err
			}
		}
		return rr.Err()
	case "csv":
		cw := csv.NewWriter(w)
		var head []string
		for _, f := range rr.Schema().Fields() {
			head = append(head, f.Name)
		}
		if err := cw.Write(head); err != nil {
			return err
		}
		for rr.Next() {
			rec := rr.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				row := make([]string, rec.NumCols())
				for j := range row {
					if !rec.Column(j).IsNull(i) {
						row[j] = cellString(rec.Column(j), i)
					}
				}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		return rr.Err()
	}
	return writeTable(w, rr)
}

// writeJSONRows writes one JSON object per row of rec, its keys in column
// order (array.RecordToJSON goes through a map, which sorts them).
func writeJSONRows(w io.Writer, rec arrow.RecordBatch) error {
	names := make([][]byte, rec.NumCols())
	for j, f := range rec.Schema().Fields() {
		b, err := json.Marshal(f.Name)
		if err != nil {
			return err
		}
		names[j] = b
	}
	var b bytes.Buffer
	for i := 0; i < int(rec.NumRows()); i++ {
		b.Reset()
		b.WriteByte('{')
		for j, c := range rec.Columns() {
			if j > 0 {
				b.WriteByte(',')
			}
			v, err := json.Marshal(c.GetOneForMarshal(i))
			if err != nil {
				return fmt.Errorf("column %s, row %d: %w", rec.Schema().Field(j).Name, i+1, err)
			}
			b.Write(names[j])
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteString("}\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// writeTable prints an aligned text table, psql style: a header, a rule,
// numbers right-aligned, NULL for nulls, long cells cut at 60 characters,
// newlines shown as \n, then "(N rows)".
func writeTable(w io.Writer, rr array.RecordReader) error {
	sch := rr.Schema()
	ncol := len(sch.Fields())
	rows := [][]string{}
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, ncol)
			for j := range row {
				if rec.Column(j).IsNull(i) {
					row[j] = "NULL"
					continue
				}
				s := strings.ReplaceAll(cellString(rec.Column(j), i), "\n", `\n`)
				if utf8.RuneCountInString(s) > 60 {
					s = string([]rune(s)[:57]) + "..."
				}
				row[j] = s
			}
			rows = append(rows, row)
		}
	}
	if err := rr.Err(); err != nil {
		return err
	}
	right := make([]bool, ncol)
	var head []string
	for j, f := range sch.Fields() {
		head = append(head, f.Name)
		right[j] = arrow.IsInteger(f.Type.ID()) || arrow.IsFloating(f.Type.ID()) || arrow.IsDecimal(f.Type.ID())
	}
	return printAligned(w, head, rows, right)
}

// printAligned prints head, a rule, and rows in aligned columns separated by
// " | " (right-aligned where right[j]), then "(N rows)".
func printAligned(w io.Writer, head []string, rows [][]string, right []bool) error {
	width := make([]int, len(head))
	for j, h := range head {
		width[j] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for j, c := range r {
			width[j] = max(width[j], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(cells []string, alignRight []bool) {
		for j, c := range cells {
			if j > 0 {
				b.WriteString(" | ")
			}
			pad := strings.Repeat(" ", width[j]-utf8.RuneCountInString(c))
			switch {
			case alignRight != nil && alignRight[j]:
				b.WriteString(pad + c)
			case j == len(cells)-1:
				b.WriteString(c)
			default:
				b.WriteString(c + pad)
			}
		}
		b.WriteString("\n")
	}
	line(head, nil)
	for j := range width {
		if j > 0 {
			b.WriteString("-+-")
		}
		b.WriteString(strings.Repeat("-", width[j]))
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r, right)
	}
	if len(rows) == 1 {
		b.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(&b, "(%d rows)\n", len(rows))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cellString renders one value: floats in Go's shortest form, timestamps
// as RFC 3339, everything else as Arrow's ValueStr. The result is a copy: a
// string cell's Value aliases the batch's buffer, which DuckDB's reader
// reuses on the next batch.
func cellString(a arrow.Array, i int) string { return strings.Clone(cellString0(a, i)) }

func cellString0(a arrow.Array, i int) string {
	switch c := a.(type) {
	case *array.Float64:
		return formatFloat(c.Value(i), 64)
	case *array.Float32:
		return formatFloat(float64(c.Value(i)), 32)
	case *array.Timestamp:
		u := c.DataType().(*arrow.TimestampType)
		return c.Value(i).ToTime(u.Unit).UTC().Format("2006-01-02 15:04:05.000000Z")
	}
	return a.ValueStr(i)
}

// formatFloat prints the shortest representation that round-trips, always
// with a decimal point or exponent so a float reads as one (1.0, not 1).
func formatFloat(v float64, bits int) string {
	s := strconv.FormatFloat(v, 'g', -1, bits)
	if a := math.Abs(v); a >= 1e-4 && a < 1e15 {
		s = strconv.FormatFloat(v, 'f', -1, bits)
	}
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}
