//go:build cuda && cgo

package cuda

/*
#include "rljob_cuda.h"
*/
import "C"

import "fmt"

// RowCopy is one row of ScatterRows: N floats from the source at SrcOff
// into Dst at DstOff.
type RowCopy struct {
	Dst            *Buf
	DstOff, SrcOff int
	N              int
}

// ScatterRows copies every row of rows out of src (F32) into its own
// destination buffer, with one upload of the rows' address table and one
// launch (kvcache.cu), in place of one cudaMemcpy per row: the trainer's
// device-resident KV caches take a decode pass's new keys and values this
// way (each sequence's row into its own cache). Destinations must not
// overlap each other or src.
func (d *Device) ScatterRows(src *Buf, rows []RowCopy) error {
	const name = "scatter_rows"
	if len(rows) == 0 {
		return nil
	}
	if src == nil || src.DType != F32 {
		return fmt.Errorf("cuda: %s: source %s, want an f32 buffer", name, bufDesc(src))
	}
	d.tab = d.tab[:0]
	for i, r := range rows {
		switch {
		case r.Dst == nil || r.Dst.DType != F32:
			return fmt.Errorf("cuda: %s: row %d: destination %s, want an f32 buffer", name, i, bufDesc(r.Dst))
		case r.N < 0 || r.DstOff < 0 || r.DstOff+r.N > r.Dst.N:
			return fmt.Errorf("cuda: %s: row %d: %d floats at %d of %s", name, i, r.N, r.DstOff, bufDesc(r.Dst))
		case r.SrcOff < 0 || r.SrcOff+r.N > src.N:
			return fmt.Errorf("cuda: %s: row %d: %d floats at %d of the source %s", name, i, r.N, r.SrcOff, bufDesc(src))
		}
		d.tab = append(d.tab, r.Dst.ptr+uint64(4*r.DstOff), uint64(r.SrcOff), uint64(r.N))
	}
	tab, err := d.Scratch("scatter table", U64, len(d.tab))
	if err != nil {
		return err
	}
	if err := d.uploadU64(tab, d.tab); err != nil {
		return err
	}
	return cerr(name, C.rj_scatter_rows(src.p(), tab.p(), C.int(len(rows))))
}
