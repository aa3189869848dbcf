package kernels

import "math"

// Attention's backward over a whole sequence is done per head as matrix
// products (flash-attention's math, materialised one head at a time in a
// (T,T) scratch): S = Q·Kᵀ, dP = dO·Vᵀ, dV += Pᵀ·dO, dQ += dS·K,
// dK += dSᵀ·Q, each one serial biGemm (bigemm.go: an FMA chain per
// element, k in order) inside the goroutine that owns the head. The causal
// upper half is skipped by blocks of attnBlock positions (issue 16): S, dP
// and dQ's rows of a query block [t0, t1) over the keys [0, t1), dV's and
// dK's rows of a key block [s0, s1) over the queries [s0, T). Masking and
// the softmax are attention.go's (float32, expf; attnExpBlock runs them in
// C on the avx2 and avx512 kernel sets, with the same bits).
// Deterministic and ISA-independent: fixed work per goroutine, biGemm's
// fixed order, same bytes at any GOMAXPROCS and on every kernel set, and
// the same bytes as the products over all T×T (attnBackwardGEMMFullT in
// the tests) for finite inputs:
//
//   - S and dP: the elements past a block's t1 are keys s > t, never read.
//   - dQ[t] += Σ_s dS[t,s]·K[s]: the keys s ≥ t1 were the chain's trailing
//     terms, with dS = +0 (the P row is cleared past t). fma(+0, x, acc)
//     is acc for every acc but −0, which +0·x = +0 (x's sign bit clear)
//     turns into +0; attnFixNegZero applies exactly that to the outputs
//     that end −0 (dq's own start value may be −0, or a chain may round to
//     −0 by underflow).
//   - dV[s] += Σ_t P[t,s]·dO[t] and dK[s] += Σ_t dS[t,s]·Q[t]: the
//     queries t < s0 were the chain's leading terms, again +0 (t < s), so
//     they leave the accumulator — dv's and dk's value from the previous
//     head or the caller — as it is unless it is −0: attnFixNegZero runs
//     on it before the block's product.

// attnGEMMMinT and attnGEMMMaxT bound the sequence lengths that use the
// GEMM path: below, the scalar loops cost less than the calls; above, the
// per-goroutine scratch (2·T² floats in the backward, 128 MiB at 4096)
// would grow too large.
const (
	attnGEMMMinT = 8
	attnGEMMMaxT = 4096
)

func attnUseGEMM(T int) bool { return T >= attnGEMMMinT && T <= attnGEMMMaxT }

// attnBackwardGEMM is attentionBackward through matrix products, parallel
// over (b, kv head) so that one goroutine owns dk, dv of its head and dq of
// the NH/NKV query heads of the group, visited in ascending order.
func attnBackwardGEMM(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	checkGQA(NH, NKV, HS)
	g := NH / NKV
	scale := float32(1 / math.Sqrt(float64(HS)))
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getScratch(2 * T * T)
		defer putScratch(sc)
		var pk [5]*PackedWeight
		for i := range pk {
			pk[i] = getPacked()
			defer putPacked(pk[i])
		}
		a := attnBwd{P: sc.buf[:T*T], dP: sc.buf[T*T:], T: T, HS: HS, ldq: NH * HS, ldk: NKV * HS, scale: scale,
			pkS: pk[0], pkT: pk[1], pvS: pk[2], pdo: pk[3], pq: pk[4]}
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			a.k, a.v = k[(b*T*NKV+kh)*HS:], v[(b*T*NKV+kh)*HS:]
			a.dk, a.dv = dk[(b*T*NKV+kh)*HS:], dv[(b*T*NKV+kh)*HS:]
			a.valid = nil
			if valid != nil {
				a.valid = valid[b*T : (b+1)*T]
			}
			packStrided(a.pkS, a.k, a.ldk, T, HS, false)  // keys as rows: S = Q·Kᵀ
			packTStrided(a.pkT, a.k, a.ldk, T, HS, false) // keys as columns: dQ += dS·K
			packStrided(a.pvS, a.v, a.ldk, T, HS, false)  // values as rows: dP = dO·Vᵀ
			for h := kh * g; h < (kh+1)*g; h++ {
				o := (b*T*NH + h) * HS
				a.q, a.do, a.out, a.dq = q[o:], dout[o:], out[o:], dq[o:]
				a.lse = lse[(b*NH+h)*T : (b*NH+h+1)*T]
				a.head()
			}
		}
	})
}

// attnBwd is one (sequence, kv head)'s backward state: the operands of
// one query head (rows ldq apart), of its kv head (rows ldk apart), the
// (T, T) scratch P and dP, and the packed right-hand sides.
type attnBwd struct {
	P, dP                  []float32
	T, HS, ldq, ldk        int
	scale                  float32
	valid                  []bool
	k, v, dk, dv           []float32
	q, do, out, dq, lse    []float32
	pkS, pkT, pvS, pdo, pq *PackedWeight
	flag                   [attnBlock]uint8 // attnExpBlock's
}

// head accumulates one query head's dq and its share of dk, dv.
func (a *attnBwd) head() {
	T, HS := a.T, a.HS
	packTStrided(a.pdo, a.do, a.ldq, T, HS, false) // dO as columns: dV += Pᵀ·dO
	packTStrided(a.pq, a.q, a.ldq, T, HS, false)   // Q as columns: dK += dSᵀ·Q
	// P = exp(scale·Q·Kᵀ - lse), zero where masked
	for t0 := 0; t0 < T; t0 += attnBlock {
		t1 := min(T, t0+attnBlock)
		a.rows(a.P, a.q, a.pkS, t0, t1)
		attnExpBlock(a.P, a.valid, t0, t1, T, a.scale, a.lse, a.flag[:])
	}
	// dV_kh += Pᵀ · dO_h
	a.keyBlocks(a.dv, a.do, a.pdo)
	// dP = dO_h · V_khᵀ;  dS = P ∘ (dP - D) · scale (into P)
	for t0 := 0; t0 < T; t0 += attnBlock {
		t1 := min(T, t0+attnBlock)
		a.rows(a.dP, a.do, a.pvS, t0, t1)
		for t := t0; t < t1; t++ {
			D := dot(a.do[t*a.ldq:t*a.ldq+HS], a.out[t*a.ldq:t*a.ldq+HS])
			row, drow := a.P[t*T:t*T+t+1], a.dP[t*T:t*T+t+1]
			for s := range row {
				row[s] *= (drow[s] - D) * a.scale
			}
		}
	}
	// dQ_h += dS · K_kh
	for t0 := 0; t0 < T; t0 += attnBlock {
		t1 := min(T, t0+attnBlock)
		pw := PackedWeight{N: HS, K: t1, ps: a.pkT.ps, data: a.pkT.data}
		g := biGemm{out: a.dq[t0*a.ldq:], inp: a.P[t0*T:], ldo: a.ldq, lda: T, ldk: 1, pw: &pw, acc: true}
		g.run(t1-t0, false)
		attnFixNegZero(a.dq[t0*a.ldq:], a.ldq, t1-t0, HS, a.k, a.ldk, t1, T)
	}
	// dK_kh += dSᵀ · Q_h
	a.keyBlocks(a.dk, a.q, a.pq)
}

// rows computes dst[t0:t1, 0:t1] = x[t0:t1]·(pw's rows [0, t1))ᵀ: S or
// dP for a block of queries over the keys it sees.
func (a *attnBwd) rows(dst, x []float32, pw *PackedWeight, t0, t1 int) {
	sub := PackedWeight{N: t1, K: a.HS, ps: pw.ps, data: pw.data}
	g := biGemm{out: dst[t0*a.T:], inp: x[t0*a.ldq:], ldo: a.T, lda: a.ldq, ldk: 1, pw: &sub}
	g.run(t1-t0, false)
}

// keyBlocks computes acc[s0:s1] += P[s0:T, s0:s1]ᵀ · x[s0:T] per key
// block (dV with x = dO, dK with x = Q and P holding dS), px being x
// packed as columns; the queries t < s0 are skipped (see the header).
func (a *attnBwd) keyBlocks(acc, x []float32, px *PackedWeight) {
	T, HS := a.T, a.HS
	for s0 := 0; s0 < T; s0 += attnBlock {
		s1 := min(T, s0+attnBlock)
		attnFixNegZero(acc[s0*a.ldk:], a.ldk, s1-s0, HS, x, a.ldq, 0, s0)
		pw := PackedWeight{N: HS, K: T - s0, ps: px.ps, data: px.data[s0*biPanel:]}
		g := biGemm{out: acc[s0*a.ldk:], inp: a.P[s0*T+s0:], ldo: a.ldk, lda: 1, ldk: T, pw: &pw, acc: true}
		g.run(s1-s0, false)
	}
}

// attnExpBlockGo turns the rows of S of the queries [t0, t1) (row t of
// P, T floats apart, keys [0, t1)) into P (attnExpQuery). attnExpBlock
// runs it in C.
func attnExpBlockGo(P []float32, valid []bool, t0, t1, T int, scale float32, lse []float32) {
	for t := t0; t < t1; t++ {
		attnExpQuery(P[t*T:t*T+t1], valid, t, scale, lse[t])
	}
}

// attnExpQuery turns row (keys [0, t1)) of query t into exp(S·scale − l)
// for the keys s ≤ t that are valid (nil: all), +0 elsewhere; a padding
// query gets a zero row.
func attnExpQuery(row []float32, valid []bool, t int, scale, l float32) {
	if valid != nil && !valid[t] {
		clear(row)
		return
	}
	var ok []bool
	if valid != nil {
		ok = valid[:t+1]
	}
	attnExpRowGo(row[:t+1], ok, scale, l)
	clear(row[t+1:])
}

// attnExpRowGo sets row[s] = expf(row[s]·scale − l) for the keys s that
// take part (ok nil or ok[s]), +0 for the others.
func attnExpRowGo(row []float32, ok []bool, scale, l float32) {
	for s, x := range row {
		if ok != nil && !ok[s] {
			row[s] = 0
			continue
		}
		row[s] = expf(x*scale - l)
	}
}

// attnFixNegZero gives the m×n outputs o (rows ldo apart) the effect of
// the FMA terms fma(+0, x[u, d], acc), u in [u0, u1), that a skipped
// block left out of output column d's chain (x's rows ldx apart): an
// output that is −0 becomes +0 when some x[u, d] has its sign bit clear
// (+0·x = +0 and −0 + +0 = +0); every other value stays as it is.
func attnFixNegZero(o []float32, ldo, m, n int, x []float32, ldx, u0, u1 int) {
	for i := range m {
		row := o[i*ldo : i*ldo+n]
		for d, y := range row {
			if math.Float32bits(y) != 1<<31 {
				continue
			}
			for u := u0; u < u1; u++ {
				if math.Float32bits(x[u*ldx+d])>>31 == 0 {
					row[d] = 0
					break
				}
			}
		}
	}
}
