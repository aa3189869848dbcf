package arrowio

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// withoutKeys returns sch without top-level run and step fields (they live
// in the path).
func withoutKeys(sch *arrow.Schema) *arrow.Schema {
	if len(sch.FieldIndices(KeyRun)) == 0 && len(sch.FieldIndices(KeyStep)) == 0 {
		return sch
	}
	fields := make([]arrow.Field, 0, sch.NumFields())
	for _, f := range sch.Fields() {
		if f.Name != KeyRun && f.Name != KeyStep {
			fields = append(fields, f)
		}
	}
	md := sch.Metadata()
	return arrow.NewSchema(fields, &md)
}

// projection adapts the records of src to schema sch: columns are picked by
// name (src may order them differently and have more); types must match
// (nullability aside). When src already has schema sch the records pass
// through untouched.
type projection struct {
	src  array.RecordReader
	sch  *arrow.Schema
	idx  []int // idx[i] = column of src feeding field i of sch; nil: identity
	cur  arrow.RecordBatch
	err  error
	refs atomic.Int64
}

func newProjection(sch *arrow.Schema, src array.RecordReader) (*projection, error) {
	p := &projection{src: src, sch: sch}
	p.refs.Store(1)
	in := src.Schema()
	if in.Equal(sch) {
		return p, nil
	}
	p.idx = make([]int, sch.NumFields())
	for i, f := range sch.Fields() {
		cols := in.FieldIndices(f.Name)
		if len(cols) == 0 {
			return nil, &ColumnError{Column: f.Name, Want: f.Type}
		}
		if len(cols) > 1 {
			return nil, fmt.Errorf("column %q appears %d times in the input", f.Name, len(cols))
		}
		if got := in.Field(cols[0]).Type; !arrow.TypeEqual(got, f.Type) {
			return nil, &ColumnError{Column: f.Name, Want: f.Type, Got: got}
		}
		p.idx[i] = cols[0]
	}
	return p, nil
}

func (p *projection) Schema() *arrow.Schema { return p.sch }
func (p *projection) Retain()               { p.refs.Add(1) }
func (p *projection) Release() {
	if p.refs.Add(-1) == 0 && p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
}
func (p *projection) Err() error                     { return p.err }
func (p *projection) Record() arrow.RecordBatch      { return p.cur }
func (p *projection) RecordBatch() arrow.RecordBatch { return p.cur }

func (p *projection) Next() bool {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
	if p.err != nil || !p.src.Next() {
		if p.err == nil {
			p.err = p.src.Err()
		}
		return false
	}
	rec := p.src.RecordBatch()
	if p.idx == nil {
		rec.Retain()
		p.cur = rec
		return true
	}
	if !rec.Schema().Equal(p.src.Schema()) {
		p.err = fmt.Errorf("record schema changed mid-stream: %s", rec.Schema())
		return false
	}
	cols := make([]arrow.Array, len(p.idx))
	for i, c := range p.idx {
		col := rec.Column(c)
		if !p.sch.Field(i).Nullable && col.NullN() > 0 {
			p.err = fmt.Errorf("column %q: %d NULLs in a NOT NULL column", p.sch.Field(i).Name, col.NullN())
			return false
		}
		cols[i] = col
	}
	p.cur = array.NewRecordBatch(p.sch, cols, rec.NumRows())
	return true
}
