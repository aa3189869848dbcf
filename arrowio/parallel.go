package arrowio

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// columnPlan says how one top-level field maps onto its single Parquet leaf.
type columnPlan struct {
	list         bool // list<flat> (else flat)
	nullable     bool // the field (the list itself for lists)
	elemNullable bool // list elements
}

// Parquet definition levels of a list<flat> leaf (the three-level list
// encoding): a null list, an empty list, a null element, a present element.
// Without a nullable list the levels shift down by one.
func (p columnPlan) listLevels() (null, empty, nullElem, present int16) {
	if p.nullable {
		empty = 1
	}
	nullElem = empty + 1
	present = nullElem
	if p.elemNullable {
		present++
	}
	return 0, empty, nullElem, present
}

func flatSupported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.BOOL, arrow.INT32, arrow.INT64, arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.BINARY, arrow.TIMESTAMP, arrow.DATE32:
		return true
	}
	return false
}

// planColumns returns a plan per field when every field is flat or a list of
// flat values (so field i is Parquet leaf i), and false otherwise.
func planColumns(sch *arrow.Schema) ([]columnPlan, bool) {
	plans := make([]columnPlan, sch.NumFields())
	for i, f := range sch.Fields() {
		switch {
		case flatSupported(f.Type):
			plans[i] = columnPlan{nullable: f.Nullable}
		case f.Type.ID() == arrow.LIST && flatSupported(f.Type.(*arrow.ListType).Elem()):
			plans[i] = columnPlan{list: true, nullable: f.Nullable, elemNullable: f.Type.(*arrow.ListType).ElemField().Nullable}
		default:
			return nil, false
		}
	}
	return plans, true
}

// writeParallel writes rr like writePqarrow, but encodes and compresses the
// columns of each row group concurrently (up to workers goroutines) into a
// buffered row group, which file.Writer then flushes in column order. The
// Parquet definition and repetition levels that pqarrow derives generically
// are computed here directly from the plans.
func writeParallel(w io.Writer, sch *arrow.Schema, plans []columnPlan, rr array.RecordReader, workers int) (rows int64, err error) {
	props := WriterProperties(sch)
	arrowProps := pqarrow.DefaultWriterProps()
	pqSchema, err := pqarrow.ToParquet(sch, props, arrowProps)
	if err != nil {
		return 0, fmt.Errorf("arrowio: parquet schema: %w", err)
	}
	for i, p := range plans {
		want := int16(0)
		if p.list {
			_, _, _, want = p.listLevels()
		} else if p.nullable {
			want = 1
		}
		if got := pqSchema.Column(i).MaxDefinitionLevel(); got != want {
			return 0, fmt.Errorf("arrowio: column %q: max definition level %d, planned %d", sch.Field(i).Name, got, want)
		}
	}
	md := sch.Metadata()
	meta := metadata.NewKeyValueMetadata()
	for i, k := range md.Keys() {
		meta.Append(k, md.Values()[i])
	}
	fw, err := file.NewParquetWriterWithError(nopCloser{w}, pqSchema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(meta))
	if err != nil {
		return 0, fmt.Errorf("arrowio: parquet writer: %w", err)
	}
	workers = max(1, min(workers, len(plans)))
	ws := make([]*columnWorker, workers)
	for i := range ws {
		ws[i] = &columnWorker{ctx: pqarrow.NewArrowWriteContext(context.Background(), &arrowProps)}
	}
	rows, err = groupRecords(rr, func(group []arrow.RecordBatch, _ int64) error {
		rgw, err := fw.AppendBufferedRowGroupChecked()
		if err != nil {
			return fmt.Errorf("arrowio: new row group: %w", err)
		}
		// Biggest columns first, so that no worker starts a long column last.
		order := make([]int, len(plans))
		size := make([]int64, len(plans))
		for c := range order {
			order[c] = c
			for _, rec := range group {
				size[c] += int64(arrayBytes(rec.Column(c).Data()))
			}
		}
		slices.SortStableFunc(order, func(a, b int) int { return int(size[b] - size[a]) })
		var (
			next atomic.Int64
			wg   sync.WaitGroup
			errs = make([]error, len(plans))
		)
		for _, cw := range ws {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(order) {
						return
					}
					c := order[i]
					errs[c] = cw.write(rgw, c, plans[c], group)
				}
			})
		}
		wg.Wait()
		for c, err := range errs {
			if err != nil {
				return fmt.Errorf("arrowio: write column %q: %w", sch.Field(c).Name, err)
			}
		}
		if err := rgw.Close(); err != nil {
			return fmt.Errorf("arrowio: close row group: %w", err)
		}
		return nil
	})
	if cerr := fw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("arrowio: close parquet writer: %w", cerr)
	}
	return rows, err
}

// columnWorker encodes whole column chunks; it owns its pqarrow write
// context (which holds a scratch buffer) and its level buffers.
type columnWorker struct {
	ctx      context.Context
	def, rep []int16
}

// write encodes column c of every record of group into the row group's
// column chunk writer c. Column chunk writers of a buffered row group are
// independent (own encoder, statistics and in-memory page sink), so distinct
// columns may be written concurrently.
func (w *columnWorker) write(rgw file.BufferedRowGroupWriter, c int, p columnPlan, group []arrow.RecordBatch) error {
	cw, err := rgw.Column(c)
	if err != nil {
		return err
	}
	for _, rec := range group {
		arr := rec.Column(c)
		if p.list {
			err = w.writeList(cw, p, arr.(*array.List))
		} else {
			err = w.writeFlat(cw, p, arr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFlat: definition level 1 for a value, 0 for a null (nullable
// fields); no levels for required fields.
func (w *columnWorker) writeFlat(cw file.ColumnChunkWriter, p columnPlan, arr arrow.Array) error {
	var def []int16
	if p.nullable {
		def = grow(&w.def, arr.Len())
		if arr.NullN() == 0 {
			for i := range def {
				def[i] = 1
			}
		} else {
			for i := range def {
				def[i] = 0
				if arr.IsValid(i) {
					def[i] = 1
				}
			}
		}
	} else if arr.NullN() > 0 {
		return fmt.Errorf("%d NULLs in a NOT NULL column", arr.NullN())
	}
	return pqarrow.WriteArrowToColumn(w.ctx, cw, arr, def, nil, p.nullable)
}

// writeList: one level pair per element (repetition 0 on a list's first
// element, 1 on the others) and one per null or empty list; the leaf array is
// the slice of child values the lists cover.
func (w *columnWorker) writeList(cw file.ColumnChunkWriter, p columnPlan, la *array.List) error {
	n := la.Len()
	if n == 0 {
		return nil
	}
	defNull, defEmpty, defNullElem, defPresent := p.listLevels()
	off := la.Data().Offset()
	offs := la.Offsets()[off : off+n+1]
	values := la.ListValues()
	lo, hi := int(offs[0]), int(offs[n])
	nlevels := 0
	for i := range n {
		if k := int(offs[i+1] - offs[i]); k > 0 {
			nlevels += k
		} else {
			nlevels++
		}
	}
	def, rep := grow(&w.def, nlevels), grow(&w.rep, nlevels)
	elemNulls := values.NullN() > 0
	j := 0
	for i := range n {
		s, e := int(offs[i]), int(offs[i+1])
		if la.IsNull(i) {
			if !p.nullable {
				return fmt.Errorf("NULL list in a NOT NULL column (row %d)", i)
			}
			if e != s {
				return fmt.Errorf("NULL list with %d values (row %d)", e-s, i)
			}
			def[j], rep[j] = defNull, 0
			j++
			continue
		}
		if e == s {
			def[j], rep[j] = defEmpty, 0
			j++
			continue
		}
		for k := s; k < e; k++ {
			d := defPresent
			if elemNulls && values.IsNull(k) {
				if !p.elemNullable {
					return fmt.Errorf("NULL element in a list of NOT NULL (row %d)", i)
				}
				d = defNullElem
			}
			def[j], rep[j] = d, 1
			j++
		}
		rep[j-(e-s)] = 0
	}
	leaf := array.NewSlice(values, int64(lo), int64(hi))
	defer leaf.Release()
	return pqarrow.WriteArrowToColumn(w.ctx, cw, leaf, def, rep, p.elemNullable)
}

// grow returns (*buf)[:n], reallocating when too small.
func grow(buf *[]int16, n int) []int16 {
	if cap(*buf) < n {
		*buf = make([]int16, n+n/4)
	}
	return (*buf)[:n]
}
