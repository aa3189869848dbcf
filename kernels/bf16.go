package kernels

import (
	"fmt"
	"math"
	"sync"
)

// bf16 matmul. bfloat16 is float32's upper 16 bits (8 exponent bits, 7
// mantissa bits), so the product of two bf16 values is exact in float32.
// MatmulForwardBF16 rounds inp to bf16 (round to nearest even, subnormals
// to ±0), multiplies it by a weight already rounded to bf16 and packed
// (PackWeightBF16), and accumulates in float32 in the order of the x86
// instruction VDPBF16PS, which does 32 multiply-adds per instruction
// (2× the float32 FMA rate):
//
//	acc = bias[n] (or +0)
//	for each pair p = 0 .. ceil(K/2)-1 (k = 2p, 2p+1; a missing k = K is 0):
//	    acc = ftz(daz(acc) + x[2p+1]·w[n,2p+1])   one rounding (exact product)
//	    acc = ftz(daz(acc) + x[2p]·w[n,2p])
//	out[m,n] = acc
//
// daz reads a subnormal as ±0 and ftz flushes a subnormal result to ±0, as
// the instruction does. The odd element of a pair goes first: measured on
// this project's AMD EPYC (Zen 4) against 20 million random pairs, and
// Intel's pseudo-code for VDPBF16PS has the same order. With AVX512_BF16
// the C kernel runs VDPBF16PS itself; without it (AVX-512 or AVX2 kernel
// sets) it does the two FMAs per pair with MXCSR's FTZ and DAZ bits set,
// and the Go set does them with fma32 and explicit flushes: every set gives
// the same bits (TestBF16SetsBitIdentical). The order does not depend on M,
// the row, the thread count or the set, so the bf16 path is batch-invariant
// like the float32 one.

// PackedWeightBF16 is a weight w (N, K) rounded to bf16 and packed for
// MatmulForwardBF16: ceil(N/16) panels of (K2 = ceil(K/2), 16) uint32, each
// holding bf16(w[16p+j, 2i]) in its low half and bf16(w[16p+j, 2i+1]) in
// its high half; zero past N and past K.
type PackedWeightBF16 struct {
	N, K int
	data []uint32
}

func (pw *PackedWeightBF16) panels() int { return (pw.N + biPanel - 1) / biPanel }
func (pw *PackedWeightBF16) pairs() int  { return (pw.K + 1) / 2 }

// BF16 rounds x to the nearest bfloat16 (ties to even) and returns its
// bits; a subnormal x gives ±0 and a NaN a quiet NaN.
func BF16(x float32) uint16 {
	u := math.Float32bits(x)
	switch {
	case u&0x7f800000 == 0: // ±0 or subnormal
		return uint16(u>>16) & 0x8000
	case u&0x7fffffff > 0x7f800000: // NaN
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// BF16Float returns the float32 value of bfloat16 bits b.
func BF16Float(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// PackWeightBF16 rounds w (N, K) to bf16 and packs it into pw, reusing its
// memory, and returns pw (a new one when pw is nil).
func PackWeightBF16(pw *PackedWeightBF16, w []float32, N, K int) *PackedWeightBF16 {
	return packBF16(pw, w[:N*K], N, K, K, 1)
}

// PackWeightBF16T is PackWeightBF16 for a weight given transposed: w is
// (K, N) and the packed weight is wᵀ (N, K).
func PackWeightBF16T(pw *PackedWeightBF16, w []float32, K, N int) *PackedWeightBF16 {
	return packBF16(pw, w[:N*K], N, K, 1, N)
}

// packBF16 packs the (N, K) matrix whose element (n, k) is w[n·ldn + k·ldk].
func packBF16(pw *PackedWeightBF16, w []float32, N, K, ldn, ldk int) *PackedWeightBF16 {
	if N <= 0 || K <= 0 {
		panic(fmt.Sprintf("kernels: pack bf16 weight: N=%d K=%d must be > 0", N, K))
	}
	if pw == nil {
		pw = &PackedWeightBF16{}
	}
	pw.N, pw.K = N, K
	n := pw.panels() * biPanel * pw.pairs()
	if cap(pw.data) < n {
		pw.data = make([]uint32, n)
	}
	pw.data = pw.data[:n]
	if ldk == 1 {
		parallelFor(pw.panels(), max(1, grainElems/(biPanel*K)), func(lo, hi int) {
			bf16PackRange(pw.data, w, N, K, ldn, ldk, lo, hi)
		})
		return pw
	}
	// transposed: pairs of rows of w, each read whole once
	parallelFor(pw.pairs(), max(16, grainElems/(2*N)), func(lo, hi int) {
		bf16PackColsRange(pw.data, w, N, K, ldk, lo, hi)
	})
	return pw
}

// bf16PackRangeGo is bf16PackRange in Go.
func bf16PackRangeGo(data []uint32, w []float32, N, K, ldn, ldk, p0, p1 int) {
	K2 := (K + 1) / 2
	for p := p0; p < p1; p++ {
		dst := data[p*biPanel*K2 : (p+1)*biPanel*K2]
		for i := range K2 {
			for j := range biPanel {
				dst[i*biPanel+j] = stridedPair(w, p*biPanel+j, i, N, K, ldn, ldk)
			}
		}
	}
}

// bf16PackColsRangeGo is bf16PackColsRange in Go.
func bf16PackColsRangeGo(data []uint32, w []float32, N, K, ldk, i0, i1 int) {
	K2 := (K + 1) / 2
	for p := range (N + biPanel - 1) / biPanel {
		for i := i0; i < i1; i++ {
			for j := range biPanel {
				data[(p*K2+i)*biPanel+j] = stridedPair(w, p*biPanel+j, i, N, K, 1, ldk)
			}
		}
	}
}

// bf16XRangeGo is bf16XRange in Go.
func bf16XRangeGo(x []uint32, a []float32, K, ldm, ldk, m0, m1 int) {
	K2 := (K + 1) / 2
	for m := m0; m < m1; m++ {
		for i := range K2 {
			x[m*K2+i] = stridedPair(a, m, i, m1, K, ldm, ldk)
		}
	}
}

// stridedPair is bf16Pair of row n of the (N, K) matrix w[n·ldn + k·ldk]
// (0 past N and past K).
func stridedPair(w []float32, n, i, N, K, ldn, ldk int) uint32 {
	if n >= N {
		return 0
	}
	lo := uint32(BF16(w[n*ldn+2*i*ldk]))
	if 2*i+1 < K {
		return lo | uint32(BF16(w[n*ldn+(2*i+1)*ldk]))<<16
	}
	return lo
}

// bf16Pair packs bf16(row[2i]) | bf16(row[2i+1])<<16, 0 past the row.
func bf16Pair(row []float32, i int) uint32 {
	lo := uint32(BF16(row[2*i]))
	if 2*i+1 < len(row) {
		return lo | uint32(BF16(row[2*i+1]))<<16
	}
	return lo
}

// MatmulForwardBF16 computes out (M, N) = bf16(inp) (M, K) · wᵀ + bias
// for a packed bf16 weight w and bias (N) or nil, in the order given at
// the top of bf16.go: the same bits on every kernel set and for every M.
func MatmulForwardBF16(out, inp []float32, pw *PackedWeightBF16, bias []float32, M int) {
	if M <= 0 {
		return
	}
	matmulBF16(out, inp[:M*pw.K], pw, bias, false, M, pw.K, 1)
}

// matmulBF16 is MatmulForwardBF16 for the (M, K) input whose element
// (m, k) is inp[m·ldm + k·ldk]; with acc, each out[m,n] starts from its
// own value (instead of the bias or +0) and continues the same chain.
func matmulBF16(out, inp []float32, pw *PackedWeightBF16, bias []float32, acc bool, M, ldm, ldk int) {
	N, K, K2 := pw.N, pw.K, pw.pairs()
	out = out[:M*N]
	if bias != nil {
		bias = bias[:N]
	}
	xs := getScratch32(M * K2)
	defer putScratch32(xs)
	x := xs.buf
	blk := 1
	if ldk != 1 {
		blk = 256 // transposed input: blocks of rows read adjacent values per k (RB_XB)
	}
	parallelFor((M+blk-1)/blk, max(1, grainElems/max(1, blk*K)), func(lo, hi int) {
		bf16XRange(x, inp, K, ldm, ldk, lo*blk, min(M, hi*blk))
	})
	bf16Tiles(M, pw.panels(), K2, func(m0, m1, p0, p1 int) {
		bf16GemmRange(out, x, pw, bias, acc, m0, m1, p0, p1)
	})
}

// The bf16 GEMM's tiles (tuned on Zen 5, docs/kernels.md "bf16
// blocking"): bf16RowBlock rows × bf16PanelGroup panels (4 groups of the
// 3-panel VDPBF16PS block), halved while there are under 4 tiles a thread
// (a decode step, the lm_head's dinp); bf16KC is the C driver's K block
// in pairs × panels (kc·np: 96 KiB of weights, in L2). Below bf16ShortK
// pairs (the dW of a short chunk of rows), a tile is bf16ShortRows whole
// rows: the output, read and written once per call, streams row by row.
var (
	bf16RowBlock   = 96
	bf16PanelGroup = 12
	bf16KC         = 1536
	bf16ShortK     = 64
	bf16ShortRows  = 48
)

// bf16Tiles runs f over the tiles of an (M rows × P panels) output with
// K2 pairs, in parallel (runTiles): bf16RowBlock rows × bf16PanelGroup
// panels, or for a short K whole rows of bf16ShortRows, row block by row
// block.
func bf16Tiles(M, P, K2 int, f func(m0, m1, p0, p1 int)) {
	if K2 < bf16ShortK {
		runTiles(M, P, min(M, bf16ShortRows), P, 3, 2*K2, true, f)
		return
	}
	runTiles(M, P, min(M, bf16RowBlock), bf16PanelGroup, 3, 2*K2, false, f)
}

// bf16GemmRangeGo computes out[m, 16p0 .. min(N, 16p1)) for m in
// [m0, m1) from the bf16 pairs x (M, K2), in the order of the contract.
func bf16GemmRangeGo(out []float32, x []uint32, pw *PackedWeightBF16, bias []float32, accum bool, m0, m1, p0, p1 int) {
	N, K2 := pw.N, pw.pairs()
	var acc [biPanel]float32
	for p := p0; p < p1; p++ {
		panel := pw.data[p*biPanel*K2 : (p+1)*biPanel*K2]
		n0 := p * biPanel
		w := min(biPanel, N-n0)
		for m := m0; m < m1; m++ {
			acc = [biPanel]float32{}
			switch {
			case accum:
				copy(acc[:w], out[m*N+n0:m*N+n0+w])
			case bias != nil:
				copy(acc[:w], bias[n0:n0+w])
			}
			for i, xp := range x[m*K2 : (m+1)*K2] {
				xe, xo := math.Float32frombits(xp<<16), math.Float32frombits(xp&0xffff0000)
				wk := panel[i*biPanel : (i+1)*biPanel : (i+1)*biPanel]
				for j := range acc {
					we, wo := math.Float32frombits(wk[j]<<16), math.Float32frombits(wk[j]&0xffff0000)
					acc[j] = bf16Step(bf16Step(acc[j], xo, wo), xe, we)
				}
			}
			copy(out[m*N+n0:m*N+n0+w], acc[:w])
		}
	}
}

// bf16Step is one multiply-add of VDPBF16PS: ftz(daz(acc) + a·b) with one
// rounding (a·b is exact for bf16 operands).
func bf16Step(acc, a, b float32) float32 { return flushSub(fma32(a, b, flushSub(acc))) }

// flushSub returns ±0 for a subnormal x, x otherwise.
func flushSub(x float32) float32 {
	if u := math.Float32bits(x); u&0x7f800000 == 0 {
		return math.Float32frombits(u & 0x80000000)
	}
	return x
}

type scratch32 struct{ buf []uint32 }

var scratch32Pool sync.Pool

func getScratch32(n int) *scratch32 {
	s, _ := scratch32Pool.Get().(*scratch32)
	if s == nil {
		s = &scratch32{}
	}
	if cap(s.buf) < n {
		s.buf = make([]uint32, n)
	}
	s.buf = s.buf[:n]
	return s
}

func putScratch32(s *scratch32) { scratch32Pool.Put(s) }
