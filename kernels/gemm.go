package kernels

import "sync"

// Every matrix product of the forward and the backward — MatmulForward,
// MatmulBackward's dinp = dout·W and dW += doutᵀ·inp, attention's
// backward — goes through one kernel, the batch-invariant GEMM of
// bigemm.go: each output element is its start value (+0, the bias, or its
// own old value for +=) followed by one float32 FMA per k, k in order. The
// C kernels (AVX-512, AVX2+FMA) and the Go loop give the same bits, so a
// training step gives the same bytes on every x86-64 machine, under
// CGO_ENABLED=0 and at any thread count (TestMatmulSetsBitIdentical,
// trainer's TestTrainBytesAcrossKernelSets).
//
// Operands that are not in the kernel's layout are copied first: the
// right-hand side is packed into 16-column panels (PackWeight /
// PackWeightT, an O(N·K) copy); a transposed left-hand side is read in
// place with strides.

// gemm computes c = op(a)·op(b), or c += op(a)·op(b) when acc, every
// element one FMA chain over k = 0..K-1 in order:
//
//	op(a) (M, K): a (M, K) with rows lda apart, or, when transA, aᵀ for a (K, M)
//	op(b) (K, N): b (K, N) with rows ldb apart, or, when transB, bᵀ for b (N, K)
//	c     (M, N) with rows ldc apart
//
// par runs tiles on parallelFor's goroutines; otherwise everything runs on
// the calling goroutine (attention's backward calls it per head).
func gemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, acc bool, c []float32, ldc int, par bool) {
	if M <= 0 || N <= 0 {
		return
	}
	if K <= 0 {
		if !acc {
			for m := range M {
				clear(c[m*ldc : m*ldc+N])
			}
		}
		return
	}
	pw := getPacked()
	defer putPacked(pw)
	g := biGemm{out: c, inp: a, ldo: ldc, lda: lda, ldk: 1, pw: pw, acc: acc}
	if transA { // op(a)[m,k] = a[k·lda + m]
		g.lda, g.ldk = 1, lda
	}
	if transB {
		packStrided(pw, b, ldb, N, K, par)
		g.run(M, par)
		return
	}
	// b (K, N) is packed kc rows at a time, each slice continuing every
	// element's chain from the value the previous one stored (a float32
	// store and load are exact: the bits of one pass), so the scratch is
	// at most gemmPackFloats however large K is (the LM head's dinp =
	// dlogits·lm_head has K = the vocabulary).
	kc := gemmKChunk(K, N)
	for k0 := 0; k0 < K; k0 += kc {
		kb := min(kc, K-k0)
		sub := g
		sub.inp, sub.acc = a[k0*g.ldk:], acc || k0 > 0
		if par && !transA {
			sub.runGroups(M, N, kb, func(pw *PackedWeight, n0, n int) { packTStrided(pw, b[k0*ldb+n0:], ldb, kb, n, false) })
			continue
		}
		packTStrided(pw, b[k0*ldb:], ldb, kb, N, par)
		sub.run(M, par)
	}
}

// runGroups computes g's M rows × N columns (depth K) a group of panels
// at a time on parallelFor's goroutines: each packs its group (columns n0..n0+n-1)
// into its own scratch with pack, and runs every row past it while it is
// in cache, so the packed copy never goes out to memory. g.pw is unused.
// For rows read in place (ldk 1): packed rows (a transposed left-hand
// side) would be packed again for every group, so gemm with transA packs
// all of b first and tiles the rows instead (biTiles).
func (g *biGemm) runGroups(M, N, K int, pack func(pw *PackedWeight, n0, n int)) {
	gp, groups := panelGroups((N + biPanel - 1) / biPanel)
	parallelFor(groups, max(1, (1<<17)/(M*gp*biPanel*K)), func(lo, hi int) {
		pw := getPacked()
		defer putPacked(pw)
		for gi := lo; gi < hi; gi++ {
			n0 := gi * gp * biPanel
			n := min(gp*biPanel, N-n0)
			pack(pw, n0, n)
			sub := *g
			sub.out, sub.pw = g.out[n0:], pw
			if g.bias != nil {
				sub.bias = g.bias[n0 : n0+n]
			}
			sub.run(M, false)
		}
	})
}

// panelGroups splits P panels into groups of gp (even where P allows:
// the AVX-512 kernel's unit is 2 panels) for runGroups: a multiple of the
// goroutines in number, at least 2 each, so that none waits long for
// another's last group, and at most biPanelGroup panels each, so that a
// group stays in cache.
func panelGroups(P int) (gp, groups int) {
	w := Workers()
	groups = max(2*w, ((P+biPanelGroup-1)/biPanelGroup+w-1)/w*w)
	gp = (P + groups - 1) / groups
	gp += gp & 1
	return gp, (P + gp - 1) / gp
}

// GemmPackFloats bounds the packing scratch of MatmulForward (its weight
// is packed this many floats at a time) and of MatmulBackward's products
// (so is a right-hand side that is not transposed).
const GemmPackFloats = 1 << 22

// gemmPackFloats is GemmPackFloats (a variable so that tests can make K
// span many slices).
var gemmPackFloats = GemmPackFloats

// gemmKChunk is the number of rows of b (K, N) gemm packs at a time
// (packChunk, aligned to biKBlock).
func gemmKChunk(K, N int) int { return packChunk(K, N, biKBlock) }

// packChunk is how many of rows rows of width floats gemm packs at a
// time: all of them when they fit gemmPackFloats, else the rows split
// into as few chunks as fit, of equal size rounded up to a multiple of
// align when that still fits (the down projection's 896 rows of 4864 are
// 2 × 448, not 848 + 48, whose 3-panel pass runs far below peak), else
// at least 1.
func packChunk(rows, width, align int) int {
	n := max(1, gemmPackFloats/width)
	if n >= rows {
		return rows
	}
	chunks := (rows + n - 1) / n
	even := (rows + chunks - 1) / chunks
	if up := (even + align - 1) / align * align; up <= n {
		return up
	}
	if n >= align {
		return n - n%align
	}
	return even
}

// matmulForward is MatmulForward: out (B, OC) = inp (B, C) · weightᵀ + bias.
func matmulForward(out, inp, weight, bias []float32, B, C, OC int) {
	if B <= 0 {
		return
	}
	if C <= 0 {
		for b := range B {
			if bias != nil {
				copy(out[b*OC:(b+1)*OC], bias[:OC])
			} else {
				clear(out[b*OC : (b+1)*OC])
			}
		}
		return
	}
	// weight is packed a group of panels at a time on each goroutine
	// (runGroups): the packed copy stays in cache, and the scratch is
	// small however large OC is (an LM head).
	g := biGemm{out: out[:B*OC], inp: inp[:B*C], ldo: OC, lda: C, ldk: 1, bias: bias}
	g.runGroups(B, OC, C, func(pw *PackedWeight, n0, n int) { packStrided(pw, weight[n0*C:], C, n, C, false) })
}

// matmulBackward is MatmulBackward. Each dinp[b,c] continues its own sum
// with dout[b,o]·W[o,c] for o in order, each dW[o,c] with dout[b,o]·inp[b,c]
// for b in order (naiveMatmulBackward's order, with FMA).
func matmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	if B <= 0 {
		return
	}
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
	}
	if dinp != nil {
		gemm(false, false, B, C, OC, dout, OC, weight, C, true, dinp, C, true)
	}
	if dweight != nil {
		gemm(true, false, OC, C, B, dout, OC, inp, C, true, dweight, C, true)
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
