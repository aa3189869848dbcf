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

func matmulForwardGo(out, inp, weight, bias []float32, B, C, OC int) {
	gemmNT(out, inp, weight, bias, B, OC, C, false)
}

func matmulBackwardGo(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
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
// walked in panels of nPanel rows (kept in cache) and c in 4×4 register
// tiles.
const (
	mTile  = 16
	nPanel = 64
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
			for ; m+4 <= m1; m += 4 {
				n := n0
				for ; n+4 <= n1; n += 4 {
					kernel4x4(c, a, b, bias, m, n, N, K, acc)
				}
				for ; n < n1; n++ {
					for i := m; i < m+4; i++ {
						c[i*N+n] = dotInit(initVal(c, bias, i, n, N, acc), a[i*K:(i+1)*K], b[n*K:(n+1)*K])
					}
				}
			}
			for ; m < m1; m++ {
				for n := n0; n < n1; n++ {
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
		s += x * b[k]
	}
	return s
}

// kernel4x4 computes the 4×4 tile c[m:m+4, n:n+4] with 16 accumulators,
// each summed over k in order (same order as dotInit).
func kernel4x4(c, a, b, bias []float32, m, n, N, K int, acc bool) {
	a0 := a[(m+0)*K : (m+1)*K]
	a1 := a[(m+1)*K : (m+2)*K]
	a2 := a[(m+2)*K : (m+3)*K]
	a3 := a[(m+3)*K : (m+4)*K]
	b0 := b[(n+0)*K : (n+1)*K]
	b1 := b[(n+1)*K : (n+2)*K]
	b2 := b[(n+2)*K : (n+3)*K]
	b3 := b[(n+3)*K : (n+4)*K]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	switch {
	case acc:
		r := c[m*N+n : m*N+n+4]
		c00, c01, c02, c03 = r[0], r[1], r[2], r[3]
		r = c[(m+1)*N+n : (m+1)*N+n+4]
		c10, c11, c12, c13 = r[0], r[1], r[2], r[3]
		r = c[(m+2)*N+n : (m+2)*N+n+4]
		c20, c21, c22, c23 = r[0], r[1], r[2], r[3]
		r = c[(m+3)*N+n : (m+3)*N+n+4]
		c30, c31, c32, c33 = r[0], r[1], r[2], r[3]
	case bias != nil:
		r := bias[n : n+4]
		c00, c01, c02, c03 = r[0], r[1], r[2], r[3]
		c10, c11, c12, c13 = r[0], r[1], r[2], r[3]
		c20, c21, c22, c23 = r[0], r[1], r[2], r[3]
		c30, c31, c32, c33 = r[0], r[1], r[2], r[3]
	}
	for k := range a0 {
		x0, x1, x2, x3 := a0[k], a1[k], a2[k], a3[k]
		y0, y1, y2, y3 := b0[k], b1[k], b2[k], b3[k]
		c00 += x0 * y0
		c01 += x0 * y1
		c02 += x0 * y2
		c03 += x0 * y3
		c10 += x1 * y0
		c11 += x1 * y1
		c12 += x1 * y2
		c13 += x1 * y3
		c20 += x2 * y0
		c21 += x2 * y1
		c22 += x2 * y2
		c23 += x2 * y3
		c30 += x3 * y0
		c31 += x3 * y1
		c32 += x3 * y2
		c33 += x3 * y3
	}
	r := c[m*N+n : m*N+n+4]
	r[0], r[1], r[2], r[3] = c00, c01, c02, c03
	r = c[(m+1)*N+n : (m+1)*N+n+4]
	r[0], r[1], r[2], r[3] = c10, c11, c12, c13
	r = c[(m+2)*N+n : (m+2)*N+n+4]
	r[0], r[1], r[2], r[3] = c20, c21, c22, c23
	r = c[(m+3)*N+n : (m+3)*N+n+4]
	r[0], r[1], r[2], r[3] = c30, c31, c32, c33
}
