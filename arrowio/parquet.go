package arrowio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Writer tuning, measured on SyntheticRollouts (BenchmarkWriteRollouts):
//   - zstd level 1 (klauspost's SpeedFastest): about half the CPU of level 3
//     (SpeedDefault) for files 2% larger (200k rows: 1.6 s vs 2.6 s of CPU
//     including generation, 69.1 vs 67.8 MiB);
//   - row groups of 128Ki rows (DuckDB writes 122,880): large enough for good
//     compression and few footers, small enough to buffer in memory;
//   - dictionary encoding only for ids and labels that repeat
//     (dictionaryColumns);
//   - columns encoded in parallel (writeParallel).
const (
	zstdLevel      = 1
	rowGroupRows   = 128 * 1024
	rowGroupBytes  = 256 << 20 // a row group is cut early above this many bytes of Arrow buffers
	dataPageBytes  = 1 << 20
	writeBatchRows = 4096
)

// dictionaryColumns are the columns written with dictionary encoding: ids
// and labels that repeat across rows (a prompt's id and answer repeat once
// per sample). Every other column is PLAIN + zstd: on unique text, token
// lists and floats a dictionary costs a hash per value for nothing.
var dictionaryColumns = map[string]bool{
	"prompt_id": true, "answer": true, "task": true, "split": true, "finish_reason": true,
	"tag": true, "verifier": true, "name": true, "sample_idx": true, "policy_step": true,
}

// dictionaryPageLimit is never reached (a column chunk holds at most
// rowGroupBytes-ish of values), so a dictionary column never falls back to
// PLAIN mid-chunk. That keeps files deterministic: arrow-go writes the page
// encoding statistics of a chunk from a Go map, so a chunk with two data page
// encodings gets them in random order.
const dictionaryPageLimit = 1 << 30

// noStats names columns whose min/max statistics cost more than they help
// (long free text: filters never prune on it).
var noStats = map[string]bool{"prompt": true, "completion": true}

// WriterProperties returns the Parquet writer properties arrowio uses for a
// schema: zstd (fast level), 128Ki-row row groups, dictionary encoding only
// on dictionaryColumns, no statistics on long text and lists.
func WriterProperties(sch *arrow.Schema) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(zstdLevel),
		parquet.WithMaxRowGroupLength(rowGroupRows),
		parquet.WithDataPageSize(dataPageBytes),
		parquet.WithBatchSize(writeBatchRows),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryPageSizeLimit(dictionaryPageLimit),
		parquet.WithCreatedBy("rljob " + Version),
	}
	for _, f := range sch.Fields() {
		if useDictionary(f) {
			opts = append(opts, parquet.WithDictionaryFor(f.Name, true))
		}
		if noStats[f.Name] || isNested(f.Type) {
			opts = append(opts, parquet.WithStatsFor(leafPath(f), false))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

func useDictionary(f arrow.Field) bool {
	if !dictionaryColumns[f.Name] {
		return false
	}
	switch f.Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.INT32, arrow.INT64:
		return true
	}
	return false
}

func isNested(t arrow.DataType) bool {
	_, ok := t.(arrow.NestedType)
	return ok
}

// leafPath is the Parquet column path of a flat field or of the element of a
// list field (pqarrow names list levels "<name>.list.element").
func leafPath(f arrow.Field) string {
	if f.Type.ID() == arrow.LIST {
		return f.Name + ".list.element"
	}
	return f.Name
}

// WriteParquet streams every record of rr to w as one Parquet file (zstd,
// WriterProperties(sch)) and returns the number of rows written. Records are
// written as they arrive and cut into row groups of about 128Ki rows, so
// memory stays at about one row group. Each record must have schema sch
// (nil: rr.Schema()). A reader with no records gives a valid file with zero
// rows. WriteParquet does not close w.
//
// Schemas of flat columns and lists of flat columns (every lake table) are
// encoded by writeColumnsParallel, one goroutine per column up to GOMAXPROCS;
// other schemas by pqarrow's FileWriter, one column after another. Both give
// the same bytes (TestParallelMatchesPqarrow).
func WriteParquet(w io.Writer, sch *arrow.Schema, rr array.RecordReader) (rows int64, err error) {
	if sch == nil {
		sch = rr.Schema()
	}
	if plans, ok := planColumns(sch); ok {
		return writeParallel(w, sch, plans, rr, runtime.GOMAXPROCS(0))
	}
	return writePqarrow(w, sch, rr)
}

// writePqarrow is the sequential path: pqarrow's FileWriter, one serial row
// group per group of records.
func writePqarrow(w io.Writer, sch *arrow.Schema, rr array.RecordReader) (rows int64, err error) {
	fw, err := pqarrow.NewFileWriter(sch, nopCloser{w}, WriterProperties(sch), pqarrow.DefaultWriterProps())
	if err != nil {
		return 0, fmt.Errorf("arrowio: parquet writer: %w", err)
	}
	rows, err = groupRecords(rr, func(group []arrow.RecordBatch, n int64) error {
		if err := fw.NewRowGroupChecked(); err != nil {
			return fmt.Errorf("arrowio: new row group: %w", err)
		}
		chunks := make([]arrow.Array, len(group))
		for c, f := range sch.Fields() {
			for i, rec := range group {
				chunks[i] = rec.Column(c)
			}
			col := arrow.NewChunked(f.Type, chunks)
			err := fw.WriteColumnChunked(col, 0, n)
			col.Release()
			if err != nil {
				return fmt.Errorf("arrowio: write column %q: %w", f.Name, err)
			}
		}
		return nil
	})
	if cerr := fw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("arrowio: close parquet writer: %w", cerr)
	}
	return rows, err
}

// groupRecords reads rr and calls write with groups of records of about
// rowGroupRows rows (or rowGroupBytes of Arrow buffers): records are
// retained until their group is complete, so no record is copied; a record
// larger than two row groups is sliced. It returns the rows passed to write.
func groupRecords(rr array.RecordReader, write func(group []arrow.RecordBatch, rows int64) error) (int64, error) {
	var (
		rows        int64
		pending     []arrow.RecordBatch
		pendingRows int64
		pendingSize int64
	)
	release := func(recs []arrow.RecordBatch) {
		for _, rec := range recs {
			rec.Release()
		}
	}
	defer func() { release(pending) }()
	flush := func() error {
		if pendingRows == 0 {
			return nil
		}
		groups := int64(1)
		if pendingRows > 2*rowGroupRows {
			groups = (pendingRows + rowGroupRows - 1) / rowGroupRows
		}
		for g := range groups {
			lo, hi := pendingRows*g/groups, pendingRows*(g+1)/groups
			group := sliceRecords(pending, lo, hi)
			err := write(group, hi-lo)
			release(group)
			if err != nil {
				return err
			}
			rows += hi - lo
		}
		release(pending)
		pending, pendingRows, pendingSize = pending[:0], 0, 0
		return nil
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		rec.Retain()
		pending = append(pending, rec)
		pendingRows += rec.NumRows()
		pendingSize += recordBytes(rec)
		if pendingRows >= rowGroupRows || pendingSize >= rowGroupBytes {
			if err := flush(); err != nil {
				return rows, err
			}
		}
	}
	if err := rr.Err(); err != nil {
		return rows, fmt.Errorf("arrowio: read records: %w", err)
	}
	return rows, flush()
}

// sliceRecords returns rows [lo, hi) of the concatenation of recs as
// retained records (zero-copy slices where a record is cut).
func sliceRecords(recs []arrow.RecordBatch, lo, hi int64) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	var start int64
	for _, rec := range recs {
		end := start + rec.NumRows()
		if end > lo && start < hi {
			a, b := max(lo, start)-start, min(hi, end)-start
			if a == 0 && b == rec.NumRows() {
				rec.Retain()
				out = append(out, rec)
			} else {
				out = append(out, rec.NewSlice(a, b))
			}
		}
		start = end
	}
	return out
}

// recordBytes is the size of rec's Arrow buffers (an upper bound for slices).
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, col := range rec.Columns() {
		n += int64(arrayBytes(col.Data()))
	}
	return n
}

func arrayBytes(d arrow.ArrayData) int {
	n := 0
	for _, b := range d.Buffers() {
		if b != nil {
			n += b.Len()
		}
	}
	for _, c := range d.Children() {
		n += arrayBytes(c)
	}
	return n
}

// nopCloser keeps pqarrow's FileWriter.Close from closing the caller's writer.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// ReadParquet reads a whole Parquet file into memory as an Arrow table (the
// caller releases it). For large files use OpenParquet.
func ReadParquet(path string) (arrow.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("arrowio: read %s: %w", path, err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: 64 * 1024}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("arrowio: read %s: %w", path, err)
	}
	return tbl, nil
}

// OpenParquet streams a Parquet file as record batches of up to batchRows
// rows (<= 0: 64Ki). Release closes the file.
func OpenParquet(path string, batchRows int64) (array.RecordReader, error) {
	if batchRows <= 0 {
		batchRows = 64 * 1024
	}
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("arrowio: open %s: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: batchRows, Parallel: true}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("arrowio: open %s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("arrowio: open %s: %w", path, err)
	}
	return &fileRecordReader{RecordReader: rr, close: pf.Close}, nil
}

type fileRecordReader struct {
	pqarrow.RecordReader
	close func() error
}

func (r *fileRecordReader) Release() {
	r.RecordReader.Release()
	if r.close != nil {
		r.close()
		r.close = nil
	}
}

// ParquetRows returns the row count stored in a Parquet file's footer.
func ParquetRows(path string) (int64, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, fmt.Errorf("arrowio: open %s: %w", path, err)
	}
	defer pf.Close()
	return pf.NumRows(), nil
}

var errNotRegular = errors.New("not a regular file")
