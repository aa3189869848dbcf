package kernels

import (
	"sync"
)

// Pure-Go matmul. Every product is reduced to one kernel, gemmNT:
//
//	c[m,n] (+)= Σ_k a[m,k] * b[n,k]      a (M,K), b (N,K), c (M,N)
//
// i.e. dot products of contiguous rows. The forward is gemmNT directly;
// dinp = dout·W uses Wᵀ and dW = doutᵀ·inp uses doutᵀ and inpᵀ, transposed
// into scratch buffers (O(size) copies against O(B·C·OC) work).
//
// Each c[m,n] is one float32 accumulator summed over k = 0..K-1 in order,
// started from c's old value (or the bias), so the result is bit-identical
// to the naive loop, whatever the tiling and the number of goroutines.
// Every product is converted to float32 explicitly: the Go spec lets the
// compiler fuse x*y+z into an FMA (it does for GOAMD64=v3 and on arm64), and
// an explicit conversion forbids it, so the bits do not depend on the build.

func matmulForwardGo(out, inp, weight, bias []float32, B, C, OC int) {
	gemmNT(out, inp, weight, bias, B, OC, C, false)
}

// smallB is the batch size below which the backward uses axpy loops
// instead of transposes (a transpose costs as much as B ≈ 8 rows of work).
const smallB = 16

func matmulBackwardGo(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
	}
	if B < smallB {
		matmulBackwardSmallB(dinp, dweight, dout, inp, weight, B, C, OC)
		return
	}
	if dinp != nil {
		wt := getScratch(C * OC)
		transpose(wt.buf, weight, OC, C) // (C, OC)
		gemmNT(dinp, dout, wt.buf, nil, B, C, OC, true)
		putScratch(wt)
	}
	if dweight != nil {
		dt := getScratch(OC * B)
		it := getScratch(C * B)
		transpose(dt.buf, dout, B, OC) // (OC, B)
		transpose(it.buf, inp, B, C)   // (C, B)
		gemmNT(dweight, dt.buf, it.buf, nil, OC, C, B, true)
		putScratch(dt)
		putScratch(it)
	}
}

// matmulBackwardSmallB is the backward for a few rows as axpy loops. Each
// element still sums its terms one at a time in the naive order (o
// ascending for dinp, b ascending for dweight), so it stays bit-identical
// to the naive loop.
func matmulBackwardSmallB(dinp, dweight, dout, inp, weight []float32, B, C, OC int) {
	if dinp != nil {
		// split the C columns; each goroutine walks all o in order
		parallelFor(C, max(1, grainElems/max(1, OC)), func(lo, hi int) {
			for b := 0; b < B; b++ {
				di := dinp[b*C+lo : b*C+hi]
				for o := 0; o < OC; o++ {
					axpy1(di, dout[b*OC+o], weight[o*C+lo:o*C+hi])
				}
			}
		})
	}
	if dweight != nil {
		parallelFor(OC, max(1, grainElems/max(1, B*C)), func(lo, hi int) {
			for o := lo; o < hi; o++ {
				dw := dweight[o*C : (o+1)*C]
				for b := 0; b < B; b++ {
					axpy1(dw, dout[b*OC+o], inp[b*C:(b+1)*C])
				}
			}
		})
	}
}

// axpy1 is y += a*x element by element (one rounding per element, as the
// naive loop).
func axpy1(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += float32(a * x[i])
	}
}

// biasBackward: dbias[o] += Σ_b dout[b,o], split over o, summed over b in
// order.
func biasBackward(dbias, dout []float32, B, OC int) {
	parallelFor(OC, max(1, grainElems/max(1, B)), func(lo, hi int) {
		db := dbias[lo:hi]
		for b := 0; b < B; b++ {
			d := dout[b*OC+lo : b*OC+hi]
			for o := range db {
				db[o] += d[o]
			}
		}
	})
}

type scratch struct{ buf []float32 }

var scratchPool sync.Pool

func getScratch(n int) *scratch {
	s, _ := scratchPool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	if cap(s.buf) < n {
		s.buf = make([]float32, n)
	}
	s.buf = s.buf[:n]
	return s
}

func putScratch(s *scratch) { scratchPool.Put(s) }

// transpose writes dst (cols, rows) = srcᵀ for src (rows, cols), in 32×32
// tiles, parallel over column blocks.
func transpose(dst, src []float32, rows, cols int) {
	const tile = 32
	nb := (cols + tile - 1) / tile
	parallelFor(nb, max(1, grainElems/max(1, rows*tile)), func(lo, hi int) {
		for cb := lo; cb < hi; cb++ {
			c0, c1 := cb*tile, min(cols, (cb+1)*tile)
			for r0 := 0; r0 < rows; r0 += tile {
				r1 := min(rows, r0+tile)
				for r := r0; r < r1; r++ {
					s := src[r*cols+c0 : r*cols+c1]
					for j, x := range s {
						dst[(c0+j)*rows+r] = x
					}
				}
			}
		}
	})
}

// Tiling of gemmNT: goroutines own blocks of mTile rows of c; inside, b is
// walked in panels of nPanel rows (kept in cache) and c in 3×3 register
// tiles. 3×3 is the largest tile whose 9 accumulators and 4 operands fit in
// the 15 float registers Go's amd64 ABI leaves free; 4×4 spills and measured
// 4.1 GFLOP per CPU-second against 5.1 for 3×3 (one core, 48×96×768).
const (
	mTile  = 24
	nPanel = 96
)

// gemmNT computes c = a·bᵀ (+ bias per column) or, with acc, c += a·bᵀ.
// a (M,K), b (N,K), c (M,N), bias (N) or nil (ignored when acc).
func gemmNT(c, a, b, bias []float32, M, N, K int, acc bool) {
	mBlocks := (M + mTile - 1) / mTile
	parallelFor(mBlocks, max(1, (1<<17)/max(1, mTile*N*K)), func(lo, hi int) {
		m0, m1 := lo*mTile, min(M, hi*mTile)
		for n0 := 0; n0 < N; n0 += nPanel {
			n1 := min(N, n0+nPanel)
			m := m0
			for ; m+3 <= m1; m += 3 {
				n := n0
				for ; n+3 <= n1; n += 3 {
					kernel3x3(c, a, b, bias, m, n, N, K, acc)
				}
				for ; n < n1; n++ {
					for i := m; i < m+3; i++ {
						c[i*N+n] = dotInit(initVal(c, bias, i, n, N, acc), a[i*K:(i+1)*K], b[n*K:(n+1)*K])
					}
				}
			}
			for ; m < m1; m++ {
				n := n0
				for ; n+8 <= n1; n += 8 {
					kernel1x8(c, a, b, bias, m, n, N, K, acc)
				}
				for ; n < n1; n++ {
					c[m*N+n] = dotInit(initVal(c, bias, m, n, N, acc), a[m*K:(m+1)*K], b[n*K:(n+1)*K])
				}
			}
		}
	})
}

func initVal(c, bias []float32, m, n, N int, acc bool) float32 {
	switch {
	case acc:
		return c[m*N+n]
	case bias != nil:
		return bias[n]
	}
	return 0
}

// dotInit returns s + Σ_k a[k]*b[k] with one accumulator, k in order.
func dotInit(s float32, a, b []float32) float32 {
	b = b[:len(a)]
	for k, x := range a {
		s += float32(x * b[k])
	}
	return s
}

// kernel3x3 computes the 3×3 tile c[m:m+3, n:n+3] with 9 accumulators,
// each summed over k in order (the same order as dotInit).
func kernel3x3(c, a, b, bias []float32, m, n, N, K int, acc bool) {
	a0 := a[m*K : (m+1)*K]
	a1 := a[(m+1)*K : (m+2)*K][:len(a0)]
	a2 := a[(m+2)*K : (m+3)*K][:len(a0)]
	b0 := b[n*K : (n+1)*K][:len(a0)]
	b1 := b[(n+1)*K : (n+2)*K][:len(a0)]
	b2 := b[(n+2)*K : (n+3)*K][:len(a0)]
	r0 := c[m*N+n : m*N+n+3]
	r1 := c[(m+1)*N+n : (m+1)*N+n+3]
	r2 := c[(m+2)*N+n : (m+2)*N+n+3]
	var c00, c01, c02, c10, c11, c12, c20, c21, c22 float32
	switch {
	case acc:
		c00, c01, c02 = r0[0], r0[1], r0[2]
		c10, c11, c12 = r1[0], r1[1], r1[2]
		c20, c21, c22 = r2[0], r2[1], r2[2]
	case bias != nil:
		bs := bias[n : n+3]
		c00, c01, c02 = bs[0], bs[1], bs[2]
		c10, c11, c12 = bs[0], bs[1], bs[2]
		c20, c21, c22 = bs[0], bs[1], bs[2]
	}
	for k := range a0 {
		y0, y1, y2 := b0[k], b1[k], b2[k]
		x := a0[k]
		c00 += float32(x * y0)
		c01 += float32(x * y1)
		c02 += float32(x * y2)
		x = a1[k]
		c10 += float32(x * y0)
		c11 += float32(x * y1)
		c12 += float32(x * y2)
		x = a2[k]
		c20 += float32(x * y0)
		c21 += float32(x * y1)
		c22 += float32(x * y2)
	}
	r0[0], r0[1], r0[2] = c00, c01, c02
	r1[0], r1[1], r1[2] = c10, c11, c12
	r2[0], r2[1], r2[2] = c20, c21, c22
}

// kernel1x8 computes c[m, n:n+8] (the rows left over by the 3×3 tiles, and
// all of a one-row decode step) with 8 independent accumulators, each
// summed over k in order.
func kernel1x8(c, a, b, bias []float32, m, n, N, K int, acc bool) {
	a0 := a[m*K : (m+1)*K]
	b0 := b[n*K : (n+1)*K][:len(a0)]
	b1 := b[(n+1)*K : (n+2)*K][:len(a0)]
	b2 := b[(n+2)*K : (n+3)*K][:len(a0)]
	b3 := b[(n+3)*K : (n+4)*K][:len(a0)]
	b4 := b[(n+4)*K : (n+5)*K][:len(a0)]
	b5 := b[(n+5)*K : (n+6)*K][:len(a0)]
	b6 := b[(n+6)*K : (n+7)*K][:len(a0)]
	b7 := b[(n+7)*K : (n+8)*K][:len(a0)]
	r := c[m*N+n : m*N+n+8]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	switch {
	case acc:
		s0, s1, s2, s3, s4, s5, s6, s7 = r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
	case bias != nil:
		bs := bias[n : n+8]
		s0, s1, s2, s3, s4, s5, s6, s7 = bs[0], bs[1], bs[2], bs[3], bs[4], bs[5], bs[6], bs[7]
	}
	for k, x := range a0 {
		s0 += float32(x * b0[k])
		s1 += float32(x * b1[k])
		s2 += float32(x * b2[k])
		s3 += float32(x * b3[k])
		s4 += float32(x * b4[k])
		s5 += float32(x * b5[k])
		s6 += float32(x * b6[k])
		s7 += float32(x * b7[k])
	}
	r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] = s0, s1, s2, s3, s4, s5, s6, s7
}
