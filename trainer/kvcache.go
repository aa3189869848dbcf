package trainer

import (
	"encoding/binary"
	"fmt"

	"rljob/kernels"
)

// The sampler's incremental forward: a per-sequence KV cache and a forward
// over "rows" — (sequence, position, token) triples, packed from any
// sequences — that writes each row's keys and values (after RoPE) into its
// sequence's cache and attends over that cache.
//
// Batch invariance. A row's result must not depend on which other rows
// share the pass, or the same prompt and seed would sample differently
// alone and in a batch. Every layer of the pass is row-wise (embedding,
// RMSNorm, RoPE, SwiGLU, residual and the attention of one query over its
// own sequence's cache) except the matmuls, and kernels.MatmulForward is
// not: it switches between the pure-Go kernel and OpenBLAS on M·C·OC, and
// OpenBLAS's per-row bits change with M and with the row's place in the
// call (TestSampleMatmulRowInvariance logs it). So the sampler does its
// matmuls with rowMatmul, whose every output element is one float32 sum in
// a fixed order — kernels.MatmulForwardExact's contract, bit for bit (the
// test checks it), about 1.9× faster per core at the decode shapes (1×4
// register blocks) — and the per-layer pieces of Model (QKVForward,
// MLPForward, ...), which call MatmulForward, are re-expressed in
// decoder.pass on rowMatmul with the same formulas. The price is speed:
// scalar Go is several times slower than OpenBLAS at 32 rows
// (BenchmarkSampleMatmul).

// kvCache holds one sequence's keys and values, per layer (rows, KV*hd),
// keys after RoPE; positions < n are filled. It starts with room for the
// prompt plus a few tokens and doubles up to tmax (prompt + max new
// tokens), so sequences that stop early use little memory. A full cache
// takes tmax · L · 2 · KV·hd float32s.
type kvCache struct {
	k, v [][]float32
	rows int // allocated positions
	tmax int
	n    int
}

// kvInitialExtra is the room for new tokens a cache starts with.
const kvInitialExtra = 64

func newKVCache(c Config, tmax, rows int) kvCache {
	kc := kvCache{k: make([][]float32, c.NumLayers), v: make([][]float32, c.NumLayers), tmax: tmax}
	kc.grow(c, min(rows, tmax))
	return kc
}

// grow reallocates the cache for rows positions, keeping its content.
func (kc *kvCache) grow(c Config, rows int) {
	kvd := c.NumKVHeads * c.HeadDim()
	for l := range kc.k {
		k, v := make([]float32, rows*kvd), make([]float32, rows*kvd)
		copy(k, kc.k[l])
		copy(v, kc.v[l])
		kc.k[l], kc.v[l] = k, v
	}
	kc.rows = rows
}

// decodeRow is one token to run through the model: token tok of sequence
// seq at absolute position pos.
type decodeRow struct {
	seq int
	pos int32
	tok int32
}

// decoder runs rows through a model against per-sequence caches. Its
// buffers are sized for up to maxRows rows per pass; longer row lists are
// processed in chunks of maxRows, in order (so a sequence's later rows see
// the keys its earlier rows wrote).
type decoder struct {
	m       *Model
	caches  []kvCache
	maxRows int

	tok            []int32   // (R)
	pos            []int32   // (R)
	x, ln, tmp     []float32 // (R, C)
	rstd           []float32 // (R)
	q, att         []float32 // (R, H*hd)
	k, v           []float32 // (R, KV*hd)
	gate, up, h    []float32 // (R, I)
	xs, lns, rstds []float32 // head inputs (R, C), (R, C), (R)
}

// decoderMaxRows bounds the rows of one pass (the prefill of long prompts
// runs in chunks of this many rows; memory ≈ maxRows·(6C + 3I + 2·H·hd + 2·KV·hd) floats).
const decoderMaxRows = 256

// newDecoder makes a decoder for len(tmax) sequences; sequence i has
// prefix[i] prompt tokens and at most tmax[i] positions in all.
func newDecoder(m *Model, prefix, tmax []int, maxRows int) *decoder {
	c := m.Config
	C, I := c.HiddenSize, c.IntermediateSize
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	R := maxRows
	f := func(n int) []float32 { return make([]float32, n) }
	d := &decoder{m: m, maxRows: R,
		tok: make([]int32, R), pos: make([]int32, R),
		x: f(R * C), ln: f(R * C), tmp: f(R * C), rstd: f(R),
		q: f(R * qd), att: f(R * qd), k: f(R * kvd), v: f(R * kvd),
		gate: f(R * I), up: f(R * I), h: f(R * I),
		xs: f(R * C), lns: f(R * C), rstds: f(R),
	}
	d.caches = make([]kvCache, len(tmax))
	for i, t := range tmax {
		d.caches[i] = newKVCache(c, t, prefix[i]+kvInitialExtra)
	}
	return d
}

// run passes rows through the model, in chunks of maxRows. want[i] says
// whether row i needs its next-token logits; those are written, in row
// order, to logits (Σwant, V). Each row's position must be its sequence's
// next free cache position (rows of one sequence in increasing order).
func (d *decoder) run(rows []decodeRow, want []bool, logits []float32) error {
	V := d.m.Config.VocabSize
	nl := 0
	for lo := 0; lo < len(rows); lo += d.maxRows {
		hi := min(len(rows), lo+d.maxRows)
		k, err := d.pass(rows[lo:hi], want[lo:hi], logits[nl*V:])
		if err != nil {
			return err
		}
		nl += k
	}
	return nil
}

// prefill runs the prompts through the model, filling the caches, and
// writes each sequence's next-token logits to logits (B, V). A prompt
// equal to an earlier one is not run again: its cache rows and logits are
// copied from the first (the same bytes, since a row's result depends only
// on its own sequence).
func (d *decoder) prefill(prompts [][]int32, logits []float32) error {
	V := d.m.Config.VocabSize
	first := make([]int, len(prompts)) // index of the first equal prompt
	slot := make([]int, len(prompts))  // its logits row among the unique prompts
	seen := make(map[string]int, len(prompts))
	var rows []decodeRow
	var want []bool
	nu := 0
	for i, p := range prompts {
		key := tokensKey(p)
		if j, ok := seen[key]; ok {
			first[i], slot[i] = j, slot[j]
			continue
		}
		seen[key] = i
		first[i], slot[i] = i, nu
		nu++
		for t, tok := range p {
			rows = append(rows, decodeRow{seq: i, pos: int32(t), tok: tok})
			want = append(want, t == len(p)-1)
		}
	}
	uniq := make([]float32, nu*V)
	if err := d.run(rows, want, uniq); err != nil {
		return err
	}
	kvd := d.m.Config.NumKVHeads * d.m.Config.HeadDim()
	for i, p := range prompts {
		copy(logits[i*V:(i+1)*V], uniq[slot[i]*V:(slot[i]+1)*V])
		if j := first[i]; j != i {
			src, dst := &d.caches[j], &d.caches[i]
			for l := range dst.k {
				copy(dst.k[l][:len(p)*kvd], src.k[l])
				copy(dst.v[l][:len(p)*kvd], src.v[l])
			}
			dst.n = len(p)
		}
	}
	return nil
}

// tokensKey is a map key equal for equal token sequences.
func tokensKey(toks []int32) string {
	b := make([]byte, 4*len(toks))
	for i, t := range toks {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(t))
	}
	return string(b)
}

func totalLen(prompts [][]int32) int {
	n := 0
	for _, p := range prompts {
		n += len(p)
	}
	return n
}

// pass is one chunk of run; it returns how many logit rows it wrote.
//
// Per layer l, for the R rows x (R, C):
//
//	ln = RMSNorm(x)·input_layernorm
//	q = RoPE(ln·Wqᵀ + bq), k = RoPE(ln·Wkᵀ + bk), v = ln·Wvᵀ + bv → k, v into the caches
//	att = causal attention of each q over its sequence's cache rows 0..pos
//	x2 = x + att·Woᵀ
//	x = x2 + (silu(RMSNorm(x2)·post_attention_layernorm·Wgateᵀ) * (…·Wupᵀ))·Wdownᵀ
//
// then logits = (RMSNorm(x)·norm)·lm_headᵀ for the wanted rows — exactly
// Model.forward's formulas, row by row.
func (d *decoder) pass(rows []decodeRow, want []bool, logits []float32) (int, error) {
	m := d.m
	c := m.Config
	R := len(rows)
	C, I, V := c.HiddenSize, c.IntermediateSize, c.VocabSize
	H, KV, hd := c.NumHeads, c.NumKVHeads, c.HeadDim()
	qd, kvd := H*hd, KV*hd
	for i, r := range rows {
		kc := &d.caches[r.seq]
		if int(r.pos) != kc.n || kc.n >= kc.tmax {
			return 0, fmt.Errorf("trainer: decode: sequence %d row at position %d, cache has %d of %d", r.seq, r.pos, kc.n, kc.tmax)
		}
		if r.tok < 0 || int(r.tok) >= V {
			return 0, fmt.Errorf("trainer: decode: sequence %d position %d: token %d outside vocabulary [0,%d)", r.seq, r.pos, r.tok, V)
		}
		if kc.n >= kc.rows {
			kc.grow(c, min(kc.tmax, 2*kc.rows))
		}
		kc.n++
		d.tok[i], d.pos[i] = r.tok, r.pos
	}
	x, ln, tmp := d.x[:R*C], d.ln[:R*C], d.tmp[:R*C]
	q, k, v, att := d.q[:R*qd], d.k[:R*kvd], d.v[:R*kvd], d.att[:R*qd]
	gate, up, h := d.gate[:R*I], d.up[:R*I], d.h[:R*I]
	pos := d.pos[:R]
	kernels.EmbeddingForward(x, m.W.Embed, d.tok[:R], R, C)
	for l := range c.NumLayers {
		w := &m.W.Layers[l]
		kernels.RMSNormForward(ln, d.rstd[:R], x, w.InputNorm, R, C, m.eps)
		rowMatmul(q, ln, w.Wq, w.Bq, R, C, qd)
		rowMatmul(k, ln, w.Wk, w.Bk, R, C, kvd)
		rowMatmul(v, ln, w.Wv, w.Bv, R, C, kvd)
		kernels.RopeForward(q, q, pos, R, H, hd, m.ropeT)
		kernels.RopeForward(k, k, pos, R, KV, hd, m.ropeT)
		for i, r := range rows {
			kc := &d.caches[r.seq]
			copy(kc.k[l][int(r.pos)*kvd:], k[i*kvd:(i+1)*kvd])
			copy(kc.v[l][int(r.pos)*kvd:], v[i*kvd:(i+1)*kvd])
		}
		// One query against its own sequence's cache (B = Tq = 1): the
		// keys at positions 0..pos are all written by now, including the
		// ones of this pass.
		for i, r := range rows {
			kc := &d.caches[r.seq]
			kernels.AttentionForwardKV(att[i*qd:(i+1)*qd], q[i*qd:(i+1)*qd], kc.k[l], kc.v[l], nil, 1, 1, kc.rows, int(r.pos), H, KV, hd)
		}
		rowMatmul(tmp, att, w.Wo, nil, R, qd, C)
		kernels.ResidualForward(x, x, tmp, R*C)
		kernels.RMSNormForward(ln, d.rstd[:R], x, w.PostNorm, R, C, m.eps)
		rowMatmul(gate, ln, w.Wgate, nil, R, C, I)
		rowMatmul(up, ln, w.Wup, nil, R, C, I)
		kernels.SwiGLUForward(h, gate, up, R*I)
		rowMatmul(tmp, h, w.Wdown, nil, R, I, C)
		kernels.ResidualForward(x, x, tmp, R*C)
	}
	n := 0
	for i := range rows {
		if want[i] {
			copy(d.xs[n*C:(n+1)*C], x[i*C:(i+1)*C])
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	kernels.RMSNormForward(d.lns[:n*C], d.rstds[:n], d.xs[:n*C], m.W.Norm, n, C, m.eps)
	rowMatmul(logits[:n*V], d.lns[:n*C], m.W.LMHead, nil, n, C, V)
	return n, nil
}

// ---------------------------------------------------------------------------
// Batch-invariant matmul.

// rowMatmul computes out (M, OC) = inp (M, C) · weightᵀ + bias, weight
// (OC, C), bias (OC) or nil — kernels.MatmulForward's contract — with the
// guarantee the sampler needs: every out[m,o] is
//
//	s = bias[o] (or 0);  for k = 0..C-1: s = float32(s + float32(inp[m,k]*weight[o,k]))
//
// computed by one goroutine, so its bits depend on neither M, nor the row's
// index, nor the other rows, nor GOMAXPROCS, nor the build's BLAS (the
// products are rounded explicitly, so no compiler fuses them into FMAs
// either). It equals kernels.MatmulForwardExact bit for bit.
//
// Work is split into tiles of rmRows rows × rmCols columns (column tiles
// outer, so consecutive tiles share a weight panel). Inside a tile, for
// each group of 4 columns (4 weight rows, kept in L1) every row is a 1×4
// register block: 4 accumulators and one shared input value per k. Larger
// blocks (2×4, 4×4, 1×8) make Go's register allocator spill and measured
// 40–50% slower; leftover columns use a single dot product — all in the
// same per-element order.
func rowMatmul(out, inp, weight, bias []float32, M, C, OC int) {
	out, inp, weight = out[:M*OC], inp[:M*C], weight[:OC*C]
	if bias != nil {
		bias = bias[:OC]
	}
	mt := (M + rmRows - 1) / rmRows
	nt := (OC + rmCols - 1) / rmCols
	grain := max(1, (1<<15)/max(1, rmRows*rmCols*C/16))
	parallelFor(mt*nt, grain, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			m0 := (t % mt) * rmRows
			n0 := (t / mt) * rmCols
			rowMatmulTile(out, inp, weight, bias, m0, min(M, m0+rmRows), n0, min(OC, n0+rmCols), C, OC)
		}
	})
}

const (
	rmRows = 32
	rmCols = 32
)

func rowMatmulTile(out, inp, weight, bias []float32, m0, m1, n0, n1, C, OC int) {
	n := n0
	for ; n+4 <= n1; n += 4 {
		for m := m0; m < m1; m++ {
			rmKernel1x4(out, inp, weight, bias, m, n, C, OC)
		}
	}
	for ; n < n1; n++ {
		for m := m0; m < m1; m++ {
			out[m*OC+n] = rmDot(rmInit(bias, n), inp[m*C:(m+1)*C], weight[n*C:(n+1)*C])
		}
	}
}

func rmInit(bias []float32, n int) float32 {
	if bias == nil {
		return 0
	}
	return bias[n]
}

// rmDot returns s + Σ_k a[k]*b[k], one accumulator, k in order.
func rmDot(s float32, a, b []float32) float32 {
	b = b[:len(a)]
	for k, x := range a {
		s += float32(x * b[k])
	}
	return s
}

// rmKernel1x4 computes out[m, n:n+4], each element in rmDot's order.
func rmKernel1x4(out, inp, weight, bias []float32, m, n, C, OC int) {
	a0 := inp[m*C : (m+1)*C]
	b0 := weight[(n+0)*C : (n+1)*C][:len(a0)]
	b1 := weight[(n+1)*C : (n+2)*C][:len(a0)]
	b2 := weight[(n+2)*C : (n+3)*C][:len(a0)]
	b3 := weight[(n+3)*C : (n+4)*C][:len(a0)]
	var c0, c1, c2, c3 float32
	if bias != nil {
		c0, c1, c2, c3 = bias[n], bias[n+1], bias[n+2], bias[n+3]
	}
	for k, x := range a0 {
		c0 += float32(x * b0[k])
		c1 += float32(x * b1[k])
		c2 += float32(x * b2[k])
		c3 += float32(x * b3[k])
	}
	r := out[m*OC+n : m*OC+n+4]
	r[0], r[1], r[2], r[3] = c0, c1, c2, c3
}
