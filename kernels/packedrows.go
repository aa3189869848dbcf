package kernels

import "fmt"

// PackedRows and PackedRowsBF16 (api.go): rows of a packed weight, for
// an embedding lookup from the packed lm_head of a tied model.

func packedRows(out []float32, w *PackedWeight, tokens []int32) {
	K := w.K
	for i, t := range tokens {
		n := int(t)
		if n < 0 || n >= w.N {
			panic(fmt.Sprintf("kernels: packed rows: row %d outside [0,%d)", n, w.N))
		}
		src := w.data[(n/biPanel)*w.ps+n%biPanel:]
		dst := out[i*K : (i+1)*K]
		for k := range dst {
			dst[k] = src[k*biPanel]
		}
	}
}

func packedRowsBF16(out []float32, w *PackedWeightBF16, tokens []int32) {
	K, K2 := w.K, w.pairs()
	for i, t := range tokens {
		n := int(t)
		if n < 0 || n >= w.N {
			panic(fmt.Sprintf("kernels: packed rows: row %d outside [0,%d)", n, w.N))
		}
		src := w.data[(n/biPanel)*biPanel*K2+n%biPanel:]
		dst := out[i*K : (i+1)*K]
		for k := range dst {
			p := src[(k/2)*biPanel]
			if k&1 == 1 {
				p >>= 16
			}
			dst[k] = BF16Float(uint16(p))
		}
	}
}

// NewPackedWeight returns an all-zero packed weight (N, K) to be filled
// by PackRows.
func NewPackedWeight(N, K int) *PackedWeight {
	pw := &PackedWeight{}
	pw.reset(N, K)
	return pw
}

// PackRows packs rows (len/K of them, a multiple of 16 unless they end
// the weight) of the weight, starting at row n0 (a multiple of 16): a
// weight read piece by piece is packed without an unpacked copy of it.
func (pw *PackedWeight) PackRows(rows []float32, n0 int) {
	sub := pw.rowsView(rows, n0)
	parallelFor(sub.panels(), max(1, grainElems/(biPanel*pw.K)), func(lo, hi int) {
		packRange(sub, rows, pw.K, lo, hi)
	})
}

func (pw *PackedWeight) rowsView(rows []float32, n0 int) *PackedWeight {
	n := len(rows) / pw.K
	if n0%biPanel != 0 || n0+n > pw.N || (n%biPanel != 0 && n0+n != pw.N) {
		panic(fmt.Sprintf("kernels: pack rows [%d, %d) of a weight of %d rows", n0, n0+n, pw.N))
	}
	return &PackedWeight{N: n, K: pw.K, ps: pw.ps, data: pw.data[(n0/biPanel)*pw.ps:]}
}

// NewPackedWeightBF16 returns an all-zero packed bf16 weight (N, K) to be
// filled by PackRows.
func NewPackedWeightBF16(N, K int) *PackedWeightBF16 {
	pw := &PackedWeightBF16{N: N, K: K}
	pw.data = make([]uint32, pw.panels()*biPanel*pw.pairs())
	return pw
}

// PackRows is PackedWeight.PackRows for a bf16 weight (rows rounded).
func (pw *PackedWeightBF16) PackRows(rows []float32, n0 int) {
	n := len(rows) / pw.K
	if n0%biPanel != 0 || n0+n > pw.N || (n%biPanel != 0 && n0+n != pw.N) {
		panic(fmt.Sprintf("kernels: pack rows [%d, %d) of a weight of %d rows", n0, n0+n, pw.N))
	}
	K2 := pw.pairs()
	data := pw.data[(n0/biPanel)*biPanel*K2:]
	panels := (n + biPanel - 1) / biPanel
	parallelFor(panels, max(1, grainElems/(biPanel*pw.K)), func(lo, hi int) {
		bf16PackRange(data, rows, n, pw.K, pw.K, 1, lo, hi)
	})
}
