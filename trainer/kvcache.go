package trainer

import (
	"encoding/binary"
	"fmt"

	"github.com/rljob/rljob/kernels"
)

// The sampler's incremental forward: a per-sequence KV cache and a forward
// over "rows" — (sequence, position, token) triples, packed from any
// sequences — that appends each row's keys and values (after RoPE) to its
// sequence's cache and attends over that cache.
//
// Batch invariance. A row's result must not depend on which other rows
// share the pass, or the same prompt and seed would sample differently
// alone and in a batch; and it must equal what Model.forward computes for
// the same token in a full sequence, or the trainer's log π would differ
// from the rollout's. Every layer is row-wise (embedding, RMSNorm, RoPE,
// SwiGLU, residual) except the matmuls and the attention, and those are
// kernels' batch-invariant ones, reached through the model's Backend:
// MatmulForwardBI on weights packed once per Generate (Model.forward
// packs them per call: same bits), and AttentionDecodeBI over a
// kernels.KVCacheBI (on the GPU the kernels/cuda twins, same bits),
// which gives the bits of AttentionForward's row for the token
// (TestSampleKVCacheMatchesNoCache, TestSampleLogprobsMatchForwardLogp).

// kvCache holds one sequence's keys and values, one backend KVCache per
// layer (on the CPU a kernels.KVCacheBI); positions < n are filled. It
// starts with room for the prompt plus a few tokens and doubles up to
// tmax (prompt + max new tokens) as needed, so sequences that stop early
// use little memory. A full cache takes about tmax · L · 2 · KV·hd
// float32s.
type kvCache struct {
	layers []KVCache
	tmax   int
	n      int
}

// kvInitialExtra is the room for new tokens a cache starts with.
const kvInitialExtra = 64

func newKVCache(be Backend, c Config, tmax, rows int) kvCache {
	kc := kvCache{layers: make([]KVCache, c.NumLayers), tmax: tmax}
	for l := range kc.layers {
		kc.layers[l] = be.NewKVCache(c.NumKVHeads, c.HeadDim(), min(rows, tmax))
	}
	return kc
}

// packedLayer and packedModel are the model's matrices packed for the
// backend's MatmulForwardPacked (a copy of the parameters, made once per
// Generate: on the CPU kernels.PackWeight, on the GPU a device copy).
type packedLayer struct {
	q, k, v, o, gate, up, down *kernels.PackedWeight
}

type packedModel struct {
	layers []packedLayer
	head   *kernels.PackedWeight
	bf     *bf16Weights // bf16: the model's bf16 forms instead (layers and head unused)
	own    bool         // packed for one Generate (free when it ends), not the model's
}

func packModel(m *Model) *packedModel {
	if m.sampler != nil {
		return m.sampler // packed at load (sampleonly.go)
	}
	if m.isBF16() {
		m.refreshBF16()
		return &packedModel{bf: m.bf}
	}
	c, be := m.Config, m.be
	C, I := c.HiddenSize, c.IntermediateSize
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	pm := &packedModel{layers: make([]packedLayer, c.NumLayers), own: true}
	for l := range pm.layers {
		w := &m.W.Layers[l]
		pm.layers[l] = packedLayer{
			q: be.PackWeight(nil, w.Wq, qd, C), k: be.PackWeight(nil, w.Wk, kvd, C),
			v: be.PackWeight(nil, w.Wv, kvd, C), o: be.PackWeight(nil, w.Wo, C, qd),
			gate: be.PackWeight(nil, w.Wgate, I, C), up: be.PackWeight(nil, w.Wup, I, C),
			down: be.PackWeight(nil, w.Wdown, C, I),
		}
	}
	pm.head = be.PackWeight(nil, m.W.LMHead, c.VocabSize, C)
	return pm
}

// free releases the packs packModel made for one Generate on be (their
// device copies on a GPU); the model's own packs stay.
func (pm *packedModel) free(be Backend) {
	if !pm.own {
		return
	}
	for _, p := range pm.layers {
		for _, w := range [...]*kernels.PackedWeight{p.q, p.k, p.v, p.o, p.gate, p.up, p.down} {
			be.FreeWeight(w)
		}
	}
	be.FreeWeight(pm.head)
}

// Linear-layer indices of packedModel.linear.
const (
	pmQ = iota
	pmK
	pmV
	pmO
	pmGate
	pmUp
	pmDown
)

// linear is out (R, OC) = inp · Wᵀ + bias for matrix which of layer l,
// on be: the packed fp32 weight or, in bf16, Model.linear's bf16 kernel.
func (pm *packedModel) linear(be Backend, out, inp []float32, l, which int, bias []float32, R int) {
	if pm.bf != nil {
		p := &pm.bf.layers[l]
		w := [...]*kernels.PackedWeightBF16{p.q, p.k, p.v, p.o, p.gate, p.up, p.down}[which]
		be.MatmulForwardBF16(out, inp, w, bias, R)
		return
	}
	p := &pm.layers[l]
	w := [...]*kernels.PackedWeight{p.q, p.k, p.v, p.o, p.gate, p.up, p.down}[which]
	be.MatmulForwardPacked(out, inp, w, bias, R)
}

// logits is the LM head on be: out (n, V) = lns (n, C) · lm_headᵀ.
func (pm *packedModel) logits(be Backend, out, lns []float32, n int) {
	if pm.bf != nil {
		be.MatmulForwardBF16(out, lns, pm.bf.head, nil, n)
		return
	}
	be.MatmulForwardPacked(out, lns, pm.head, nil, n)
}

// decodeRow is one token to run through the model: token tok of sequence
// seq at absolute position pos.
type decodeRow struct {
	seq int
	pos int32
	tok int32
}

// decoder runs rows through a model against per-sequence caches, every
// computation on the model's backend. Its buffers are sized for up to
// maxRows rows per pass; longer row lists are processed in chunks of
// maxRows, in order (so a sequence's later rows see the keys its earlier
// rows wrote).
type decoder struct {
	m       *Model
	pm      *packedModel
	caches  []kvCache
	maxRows int
	rowKV   []KVCache // (R) each row's cache at the current layer
	lens    []int32   // (R) keys each row attends over: pos + 1

	tok            []int32   // (R)
	pos            []int32   // (R)
	idx            []int32   // (R) the wanted rows of a pass (wanted)
	x, ln, tmp     []float32 // (R, C)
	rstd           []float32 // (R)
	q, att         []float32 // (R, H*hd)
	k, v           []float32 // (R, KV*hd)
	gate, up, h    []float32 // (R, I)
	xs, lns, rstds []float32 // head inputs (R, C), (R, C), (R)
	arena          []float32 // backs the float32 buffers above (kept by the backend)
}

// decoderMaxRows bounds the rows of one pass (the prefill of long prompts
// runs in chunks of this many rows; memory ≈ maxRows·(6C + 3I + 2·H·hd + 2·KV·hd) floats).
const decoderMaxRows = 256

// newDecoder makes a decoder for n sequences of at most tmax positions
// each (prompt and completion); a sequence's cache exists between start
// and release.
func newDecoder(m *Model, n, tmax, maxRows int) *decoder {
	c := m.Config
	C, I := c.HiddenSize, c.IntermediateSize
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	R := maxRows
	arena := make([]float32, R*(5*C+3*I+2*qd+2*kvd+2))
	used := 0
	f := func(n int) []float32 {
		v := arena[used : used+n : used+n]
		used += n
		return v
	}
	d := &decoder{m: m, pm: packModel(m), maxRows: R, arena: arena,
		rowKV: make([]KVCache, R), lens: make([]int32, R),
		tok: make([]int32, R), pos: make([]int32, R), idx: make([]int32, R),
		x: f(R * C), ln: f(R * C), tmp: f(R * C), rstd: f(R),
		q: f(R * qd), att: f(R * qd), k: f(R * kvd), v: f(R * kvd),
		gate: f(R * I), up: f(R * I), h: f(R * I),
		xs: f(R * C), lns: f(R * C), rstds: f(R),
	}
	if used != len(arena) {
		panic("trainer: decoder layout out of sync")
	}
	m.be.Keep(arena, fmt.Sprintf("the sampler's activations of %d rows", R)) // they stay on the backend's device
	d.caches = make([]kvCache, n)
	return d
}

// start gives sequence i an empty cache for a prompt of plen tokens and at
// most tmax positions in all.
func (d *decoder) start(i, plen, tmax int) {
	d.caches[i] = newKVCache(d.m.be, d.m.Config, tmax, plen+kvInitialExtra)
}

// close releases the caches still held (a Generate that ended early)
// and the decoder's weight packs (end of a Generate).
func (d *decoder) close() {
	for i := range d.caches {
		d.release(i)
	}
	d.pm.free(d.m.be)
	d.m.be.Forget(d.arena)
}

// release frees sequence i's cache (its device memory on a GPU).
func (d *decoder) release(i int) {
	d.caches[i].release()
	d.caches[i] = kvCache{}
}

// release frees every layer's cache (KVCache.Release).
func (kc *kvCache) release() {
	for _, c := range kc.layers {
		c.Release()
	}
}

// snapshot copies the first n positions of sequence i's cache.
func (d *decoder) snapshot(i, n int) kvCache {
	src := &d.caches[i]
	c := d.m.Config
	kc := kvCache{layers: make([]KVCache, len(src.layers)), tmax: n, n: n}
	for l, sc := range src.layers {
		kc.layers[l] = d.m.be.NewKVCache(c.NumKVHeads, c.HeadDim(), n)
		kc.layers[l].CopyPrefix(sc, n)
	}
	return kc
}

// restore fills sequence i's (started, empty) cache with a snapshot.
func (d *decoder) restore(i int, snap kvCache) {
	dst := &d.caches[i]
	for l := range dst.layers {
		dst.layers[l].CopyPrefix(snap.layers[l], snap.n)
	}
	dst.n = snap.n
}

// run passes rows through the model, in chunks of maxRows. want[i] says
// whether row i needs its next-token logits; those are written, in row
// order, to logits (Σwant, V). Each row's position must be its sequence's
// next free cache position (rows of one sequence in increasing order). A
// backend failure (the model's backend's Err) ends it with an error.
func (d *decoder) run(rows []decodeRow, want []bool, logits []float32) error {
	V := d.m.Config.VocabSize
	nl := 0
	for lo := 0; lo < len(rows); lo += d.maxRows {
		hi := min(len(rows), lo+d.maxRows)
		k, err := d.pass(rows[lo:hi], want[lo:hi], logits[nl*V:])
		if err != nil {
			return err
		}
		if err := backendErr(d.m.be, "decode"); err != nil {
			return err
		}
		nl += k
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
	c, be := m.Config, m.be
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
		kc.n++
		d.tok[i], d.pos[i], d.lens[i] = r.tok, r.pos, r.pos+1
	}
	x, ln, tmp := d.x[:R*C], d.ln[:R*C], d.tmp[:R*C]
	q, k, v, att := d.q[:R*qd], d.k[:R*kvd], d.v[:R*kvd], d.att[:R*qd]
	gate, up, h := d.gate[:R*I], d.up[:R*I], d.h[:R*I]
	pos := d.pos[:R]
	m.EmbedForward(x, d.tok[:R], R)
	for l := range c.NumLayers {
		w, pm := &m.cw().Layers[l], d.pm
		be.RMSNormForward(ln, d.rstd[:R], x, w.InputNorm, R, C, m.eps)
		pm.linear(be, q, ln, l, pmQ, w.Bq, R)
		pm.linear(be, k, ln, l, pmK, w.Bk, R)
		pm.linear(be, v, ln, l, pmV, w.Bv, R)
		m.loraAdd(q, ln, l, loraQ, R)
		m.loraAdd(k, ln, l, loraK, R)
		m.loraAdd(v, ln, l, loraV, R)
		be.RopeForward(q, q, pos, R, H, hd, m.ropeT)
		be.RopeForward(k, k, pos, R, KV, hd, m.ropeT)
		for i, r := range rows {
			d.rowKV[i] = d.caches[r.seq].layers[l]
		}
		be.AppendKV(d.rowKV[:R], k, v, kvd)
		// One query against its own sequence's cache: the keys at
		// positions 0..pos are all in by now, including this pass's.
		be.AttentionDecode(att, q, d.rowKV[:R], d.lens[:R], H)
		clear(d.rowKV[:R]) // hold no released sequence's cache
		pm.linear(be, tmp, att, l, pmO, nil, R)
		m.loraAdd(tmp, att, l, loraO, R)
		be.ResidualForward(x, x, tmp, R*C)
		be.RMSNormForward(ln, d.rstd[:R], x, w.PostNorm, R, C, m.eps)
		pm.linear(be, gate, ln, l, pmGate, nil, R)
		pm.linear(be, up, ln, l, pmUp, nil, R)
		m.loraAdd(gate, ln, l, loraGate, R)
		m.loraAdd(up, ln, l, loraUp, R)
		be.SwiGLUForward(h, gate, up, R*I)
		pm.linear(be, tmp, h, l, pmDown, nil, R)
		m.loraAdd(tmp, h, l, loraDown, R)
		be.ResidualForward(x, x, tmp, R*C)
	}
	xs, n := d.wanted(x, want)
	if n == 0 {
		return 0, nil
	}
	be.RMSNormForward(d.lns[:n*C], d.rstds[:n], xs, m.cw().Norm, n, C, m.eps)
	d.pm.logits(be, logits[:n*V], d.lns[:n*C], n)
	return n, nil
}

// wanted returns the rows of x (R, C) whose want is set, in order, and
// their count: x itself when every row is wanted (a decode step), else
// gathered into d.xs on the backend (a prefill's last prompt rows: the
// embedding lookup's row copy, with x as the table).
func (d *decoder) wanted(x []float32, want []bool) ([]float32, int) {
	C := d.m.Config.HiddenSize
	n := 0
	for i, w := range want {
		if w {
			d.idx[n] = int32(i)
			n++
		}
	}
	if n == len(want) || n == 0 {
		return x[:n*C], n
	}
	d.m.be.EmbeddingForward(d.xs[:n*C], x[:len(want)*C], d.idx[:n], n, C)
	return d.xs[:n*C], n
}

// keptRow returns a copy of row, in a new buffer the backend keeps (name
// says what it holds), made on the backend: on a GPU it never comes to
// the host. The caller forgets it (Backend.Forget).
func (m *Model) keptRow(row []float32, name string) []float32 {
	c := make([]float32, len(row))
	m.be.Keep(c, name)
	m.be.EmbeddingForward(c, row, rowZero, 1, len(row))
	return c
}
