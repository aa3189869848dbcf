package kernels

import (
	"fmt"
	"math"
	"sync"
)

// Batch-invariant matmul (issue 8). Every output element of
//
//	out (M, N) = inp (M, K) · wᵀ + bias,   w (N, K), bias (N) or nil
//
// is computed as
//
//	acc = bias[n] (or +0)
//	for k = 0 .. K-1:  acc = fma32(inp[m,k], w[n,k], acc)
//	out[m,n] = acc
//
// where fma32 is a float32 fused multiply-add (one rounding). That order
// depends on K only: not on M, on the row's index, on the other rows, on
// the thread count, on the blocking, nor on the instruction set. The C
// kernels (AVX-512 or AVX2+FMA, picked by CPUID at run time,
// bigemm_cgo.go) and the Go loop (fma32 below) give the same bits
// (TestBIGemm), so the sampler's KV-cache decode and the trainer's
// full-sequence forward, which both go through it, agree bit for bit.
//
// Why a sequential chain and not 16 partial sums and a tree: with w packed
// in panels of 16 columns, 16 consecutive outputs of one row are one
// vector register and k is the loop of the classic outer-product
// micro-kernel (broadcast inp[m,k], FMA into MR×NP accumulators). Nothing
// has to be reduced horizontally at the end, which at K = 256 would cost as
// much as a quarter of the FMAs. Each element's sum is one FMA chain, whose
// error is bounded like a plain float32 dot product's (TestBIGemm checks
// it against a float64 twin).

// biPanel is the number of columns of w per packed panel.
const biPanel = 16

// PackedWeight is a weight matrix w (N, K) laid out for MatmulForwardBI:
// ceil(N/16) panels, panel p holding columns 16p..16p+15 as (K, 16)
// (data[p·ps + k·16 + j] = w[16p+j, k], ps = 16·K for a packed matrix,
// larger for a cache with room for more k), zero past N. It is a copy:
// pack again after w changes.
type PackedWeight struct {
	N, K int
	ps   int // floats from one panel to the next
	data []float32
}

func (pw *PackedWeight) panels() int { return (pw.N + biPanel - 1) / biPanel }

func (pw *PackedWeight) reset(N, K int) {
	if N <= 0 || K <= 0 {
		panic(fmt.Sprintf("kernels: pack weight: N=%d K=%d must be > 0", N, K))
	}
	pw.N, pw.K, pw.ps = N, K, biPanel*K
	n := pw.panels() * biPanel * K
	if cap(pw.data) < n {
		pw.data = make([]float32, n)
	}
	pw.data = pw.data[:n]
}

// PackWeight packs w (N, K) (nn.Linear layout) into pw, reusing its
// memory, and returns pw (a new one when pw is nil).
func PackWeight(pw *PackedWeight, w []float32, N, K int) *PackedWeight {
	return packStrided(pw, w, K, N, K, true)
}

// packStrided packs w (N, K) with rows ldw apart into pw (a new one when
// nil), on parallelFor's goroutines when par.
func packStrided(pw *PackedWeight, w []float32, ldw, N, K int, par bool) *PackedWeight {
	if pw == nil {
		pw = &PackedWeight{}
	}
	pw.reset(N, K)
	w = w[:(N-1)*ldw+K]
	if !par {
		packRange(pw, w, ldw, 0, pw.panels())
		return pw
	}
	parallelFor(pw.panels(), max(1, grainElems/(biPanel*K)), func(lo, hi int) {
		packRange(pw, w, ldw, lo, hi)
	})
	return pw
}

// packRangeGo packs panels [p0, p1) of w (pw.N, pw.K), rows ldw apart,
// into pw.
func packRangeGo(pw *PackedWeight, w []float32, ldw, p0, p1 int) {
	N, K := pw.N, pw.K
	for p := p0; p < p1; p++ {
		dst := pw.data[p*biPanel*K : (p+1)*biPanel*K]
		for j := range biPanel {
			n := p*biPanel + j
			if n >= N {
				for k := range K {
					dst[k*biPanel+j] = 0
				}
				continue
			}
			for k, x := range w[n*ldw : n*ldw+K] {
				dst[k*biPanel+j] = x
			}
		}
	}
}

// PackWeightT packs the weight whose transpose wt (K, N) is given (so
// out = inp·wt; e.g. attention's values) into pw, as PackWeight does for
// w = wtᵀ, and returns pw.
func PackWeightT(pw *PackedWeight, wt []float32, K, N int) *PackedWeight {
	return packTStrided(pw, wt, N, K, N, false)
}

// packTStrided is PackWeightT for wt (K, N) with rows ldt apart, on
// parallelFor's goroutines when par.
func packTStrided(pw *PackedWeight, wt []float32, ldt, K, N int, par bool) *PackedWeight {
	if pw == nil {
		pw = &PackedWeight{}
	}
	pw.reset(N, K)
	wt = wt[:(K-1)*ldt+N]
	// Blocks of packTRows rows of wt, every panel of the range within a
	// block: wt is read row by row (a panel at a time would read one cache
	// line per row of a matrix as large as lm_head, a TLB miss each).
	pack := func(lo, hi int) { packTRange(pw.data, wt, ldt, K, N, lo, hi) }
	if !par {
		pack(0, pw.panels())
		return pw
	}
	parallelFor(pw.panels(), max(1, grainElems/(biPanel*K)), pack)
	return pw
}

// packTRows is packTStrided's block of rows.
const packTRows = 64

// packTRangeGo packs panels [p0, p1) of wt (K, N), rows ldt apart, into
// data: packTStrided's loop in Go (packTRange runs it in C).
func packTRangeGo(data, wt []float32, ldt, K, N, p0, p1 int) {
	for k0 := 0; k0 < K; k0 += packTRows {
		k1 := min(K, k0+packTRows)
		for p := p0; p < p1; p++ {
			packTPanel(data[p*biPanel*K:(p+1)*biPanel*K], wt, ldt, p*biPanel, min(biPanel, N-p*biPanel), k0, k1)
		}
	}
}

// packTPanel copies rows [k0, k1) of wt's columns n0..n0+w-1 into the
// panel dst ((K, 16), zero past w).
func packTPanel(dst, wt []float32, ldt, n0, w, k0, k1 int) {
	for k := k0; k < k1; k++ {
		d := dst[k*biPanel : (k+1)*biPanel]
		if w == biPanel {
			*(*[biPanel]float32)(d) = *(*[biPanel]float32)(wt[k*ldt+n0:])
			continue
		}
		copy(d, wt[k*ldt+n0:k*ldt+n0+w])
		clear(d[w:])
	}
}

// Work split (biTiles): tiles of biRowBlock rows × up to biPanelsMax
// panels, at least biPanelGroup, each one call of biGemmRange on one
// goroutine.
const (
	biRowBlock   = 96
	biPanelGroup = 8
	biPanelsMax  = 64
)

// biGemm is one product of the contract above, in general strides:
//
//	out[m·ldo + n] = init + Σ_k inp[m·lda + k·ldk]·w[n,k]   (FMA chain, k in order)
//
// (ldk 1: inp's rows are contiguous; a transposed inp has lda 1 and ldk
// its row stride, so no transpose is ever made)
// for m < M, n < pw.N, k < pw.K, where init is out's own value when acc
// (the backward's +=), else bias[n] or +0.
type biGemm struct {
	out, inp      []float32
	ldo, lda, ldk int
	pw            *PackedWeight
	bias          []float32
	acc           bool
}

// check panics unless rows [0, m1) of out and inp are in bounds (the C
// kernels index them unchecked).
func (g *biGemm) check(m1 int) {
	if m1 <= 0 {
		return
	}
	N, K := g.pw.N, g.pw.K
	_ = g.out[(m1-1)*g.ldo+N-1]
	_ = g.inp[(m1-1)*g.lda+(K-1)*g.ldk]
	_ = g.pw.data[(g.pw.panels()-1)*g.pw.ps+biPanel*K-1]
	if g.bias != nil {
		_ = g.bias[N-1]
	}
	if g.acc && g.bias != nil {
		panic("kernels: biGemm: acc with a bias")
	}
}

// biKBlock is the depth of one pass over k: a longer K is done in passes
// of biKBlock, each continuing every element's FMA chain from the value
// the previous pass stored (a float32 store and load are exact, so the
// bits are those of one pass), which keeps a tile's rows and panels in
// cache. (512, 768 and 1024 measure within noise of each other at K =
// 4864; one pass beats 512 + 384 at K = 896: docs/kernels.md.)
const biKBlock = 1024

// run computes all M rows, in tiles on parallelFor's goroutines when par.
func (g *biGemm) run(M int, par bool) {
	if M <= 0 {
		return
	}
	K := g.pw.K
	if K <= biKBlock+biKBlock/2 {
		g.runBlock(M, par)
		return
	}
	for k0 := 0; k0 < K; k0 += biKBlock {
		kb := min(biKBlock, K-k0)
		pw := PackedWeight{N: g.pw.N, K: kb, ps: g.pw.ps, data: g.pw.data[k0*biPanel:]}
		sub := biGemm{out: g.out, inp: g.inp[k0*g.ldk:], ldo: g.ldo, lda: g.lda, ldk: g.ldk, pw: &pw, acc: g.acc || k0 > 0}
		if k0 == 0 {
			sub.bias = g.bias
		}
		sub.runBlock(M, par)
	}
}

// runBlock is run for one pass over k.
func (g *biGemm) runBlock(M int, par bool) {
	P := g.pw.panels()
	if !par {
		biGemmRange(g, 0, M, 0, P)
		return
	}
	biTiles(M, P, g.pw.K, func(m0, m1, p0, p1 int) { biGemmRange(g, m0, m1, p0, p1) })
}

// biTiles runs f over tiles of biRowBlock rows × up to biPanelsMax panels
// of an (M rows, P panels, depth K) product on parallelFor's goroutines:
// the C kernels pack a tile's rows once and run them past every panel of
// the tile, so wide tiles pay for fewer packs; the width halves (down to
// biPanelGroup) until there are 4 tiles per goroutine to balance.
func biTiles(M, P, K int, f func(m0, m1, p0, p1 int)) {
	runTiles(M, P, min(M, biRowBlock), biPanelsMax, biPanelGroup, K, false, f)
}

// runTiles runs f over the tiles of mb rows × pg panels of an (M rows, P
// panels) output on parallelFor's goroutines, halving pg (down to pgMin)
// while there are fewer than 4 tiles a goroutine; depth is the floats of
// the product per output element (its K), for the grain. Tiles go panel
// group by panel group, or row block by row block when rowsFirst. Tiles
// only decide which elements are computed together, never an element's
// order. The fp32 (biTiles) and bf16 (bf16Tiles) products use it.
func runTiles(M, P, mb, pg, pgMin, depth int, rowsFirst bool, f func(m0, m1, p0, p1 int)) {
	mt := (M + mb - 1) / mb
	for pg > pgMin && mt*((P+pg-1)/pg) < 4*Workers() {
		pg /= 2
	}
	pt := (P + pg - 1) / pg
	tileWork := mb * pg * biPanel * depth
	parallelFor(mt*pt, max(1, (1<<17)/max(1, tileWork)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			mi, pi := t%mt, t/mt
			if rowsFirst {
				mi, pi = t/pt, t%pt
			}
			f(mi*mb, min(M, mi*mb+mb), pi*pg, min(P, pi*pg+pg))
		}
	})
}

// matmulForwardBI is MatmulForwardBI.
func matmulForwardBI(out, inp []float32, pw *PackedWeight, bias []float32, M int) {
	if M <= 0 {
		return
	}
	g := biGemm{out: out[:M*pw.N], inp: inp[:M*pw.K], ldo: pw.N, lda: pw.K, ldk: 1, pw: pw, bias: bias}
	g.run(M, true)
}

// biGemmHeadsGo is biGemmHeads in Go.
func biGemmHeadsGo(out, inp []float32, pw *PackedWeight, wstride, heads, M int) {
	N, K := pw.N, pw.K
	for h := range heads {
		ph := *pw
		ph.data = pw.data[h*wstride:]
		g := biGemm{out: out[h*M*N : (h+1)*M*N], inp: inp[h*M*K : (h+1)*M*K], ldo: N, lda: K, ldk: 1, pw: &ph}
		biGemmRangeGo(&g, 0, M, 0, ph.panels())
	}
}

// biGemmRangeGo computes out[m, 16p0 .. min(N, 16p1)) for m in [m0, m1)
// in the order of the contract above, with fma32.
func biGemmRangeGo(g *biGemm, m0, m1, p0, p1 int) {
	pw := g.pw
	N, K := pw.N, pw.K
	var acc [biPanel]float32
	for p := p0; p < p1; p++ {
		panel := pw.data[p*pw.ps : p*pw.ps+biPanel*K]
		n0 := p * biPanel
		w := min(biPanel, N-n0)
		for m := m0; m < m1; m++ {
			o := g.out[m*g.ldo+n0 : m*g.ldo+n0+w]
			acc = [biPanel]float32{}
			switch {
			case g.acc:
				copy(acc[:w], o)
			case g.bias != nil:
				copy(acc[:w], g.bias[n0:n0+w])
			}
			for k := range K {
				x := g.inp[m*g.lda+k*g.ldk]
				wk := panel[k*biPanel : (k+1)*biPanel : (k+1)*biPanel]
				for j := range acc {
					acc[j] = fma32(x, wk[j], acc[j])
				}
			}
			copy(o, acc[:w])
		}
	}
}

// fma32 returns a·b + c rounded once to float32, as the FMA instructions
// do. math.FMA works in float64: a·b is exact there (48 significant bits)
// but a·b + c is rounded to float64 first, and rounding that to float32
// again can differ from one rounding when the float64 result lands exactly
// on a midpoint between two float32s. Everywhere else the two roundings
// agree (no float32 value or midpoint lies between the exact sum and its
// nearest float64), so only that case, and results in float32's subnormal
// range, take fma32Exact.
func fma32(a, b, c float32) float32 {
	s := math.FMA(float64(a), float64(b), float64(c))
	u := math.Float64bits(s)
	if u&(1<<29-1) != 1<<28 && (u>>52)&0x7ff >= 1023-126 {
		return float32(s)
	}
	return fma32Exact(a, b, c)
}

// fma32Exact is fma32 by rounding to odd: s = a·b + c in float64 with its
// exact error e (TwoSum; a·b is exact), then, when e ≠ 0, s moved to its
// neighbour toward the exact value if its last bit is even. Rounding that
// to float32 gives the correctly rounded result, since float64 has more
// than 24+2 bits (Boldo & Melquiond, "Emulation of FMA and correctly
// rounded sums: proved algorithms using rounding to odd", IEEE TC 2008).
func fma32Exact(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b))
	z := float64(c)
	s := p + z
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return float32(s)
	}
	bv := s - p
	e := (p - (s - bv)) + (z - bv)
	if e != 0 {
		u := math.Float64bits(s)
		if u&1 == 0 {
			if (e > 0) == (s > 0) {
				u++
			} else {
				u--
			}
			s = math.Float64frombits(u)
		}
	}
	return float32(s)
}

var packedPool sync.Pool

func getPacked() *PackedWeight {
	if pw, ok := packedPool.Get().(*PackedWeight); ok {
		return pw
	}
	return &PackedWeight{}
}

func putPacked(pw *PackedWeight) { packedPool.Put(pw) }
