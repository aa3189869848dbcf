package kernels

import (
	"fmt"
	"math"
	"sync"
)

// Batch-invariant causal attention (issue 8): the full-sequence forward
// (AttentionForward, the trainer's) and the one-query-at-a-time decode
// over a KV cache (AttentionDecodeBI, the sampler's) compute every query
// row with the same operations in the same order, so a token's attention
// output has the same bits in both. For a query at position t of head h
// (kv head kh), over the keys u ≤ t that are not padding:
//
//	s_u  = Σ_d q[d]·k_u[d]      one FMA chain, d = 0..HS-1 (MatmulForwardBI)
//	x_u  = s_u·scale,  scale = float32(1/√HS)
//	mx   = max_u x_u
//	e_u  = expf(x_u − mx);  sum = e_0 + e_1 + … (u ascending, float32)
//	p_u  = e_u·(1/sum)
//	o[d] = Σ_u p_u·v_u[d]        one FMA chain, u ascending (MatmulForwardBI)
//	lse  = mx + float32(log(float64(sum)))
//
// The forward computes S = Q·Kᵀ and O = P·V per (sequence, kv head) as
// batch-invariant matrix products, a block of attnBlock positions at a
// time over the keys [0, t1) the block sees, with p_u = +0 for the
// masked keys: an FMA with a zero product leaves the chain's value as it
// is (unless that value is −0, which a chain starting from +0 reaches only
// by underflow: attnForwardBlock), so the sum over the block's keys
// equals the decode's sum over the t+1 keys it has. The
// probabilities are attnProbsBI's operations, run in C on the avx2 and
// avx512 kernel sets (attnProbsBlock in the forward, attnProbsRows in the
// decode): the same bits everywhere.
// The backward is AttentionBackward (it recomputes P from lse).

// attnScale is the softmax scale of head size HS.
func attnScale(HS int) float32 { return float32(1 / math.Sqrt(float64(HS))) }

// attnProbsBlockGo turns the rows of S of the queries [t0, t1) of g heads
// (row t·g+j of s, T floats apart, keys [0, t1)) into probabilities
// (attnProbsQuery), writing lse[j·T+t]. attnProbsBlock runs it in C.
func attnProbsBlockGo(s []float32, valid []bool, t0, t1, g, T int, scale float32, lse []float32) {
	for t := t0; t < t1; t++ {
		for j := range g {
			lse[j*T+t] = attnProbsQuery(s[(t*g+j)*T:(t*g+j)*T+t1], valid, t, scale)
		}
	}
}

// attnProbsRowsGo turns rows (n scores each, every key taking part) of s
// into probabilities (attnProbsBI): the decode's heads. attnProbsRows runs
// it in C.
func attnProbsRowsGo(s []float32, n, rows int, scale float32) {
	for r := range rows {
		attnProbsBI(s[r*n:(r+1)*n], nil, scale)
	}
}

// attnProbsQuery turns row (keys [0, t1)) of query t into probabilities
// over the keys u ≤ t that are valid (nil: all), +0 elsewhere, and returns
// lse; a padding query gets a zero row and lse 0.
func attnProbsQuery(row []float32, valid []bool, t int, scale float32) float32 {
	if valid != nil && !valid[t] {
		clear(row)
		return 0
	}
	var ok []bool
	if valid != nil {
		ok = valid[:t+1]
	}
	l := attnProbsBI(row[:t+1], ok, scale)
	clear(row[t+1:])
	return l
}

// attnProbsBI turns the scores s[0:n] of one query into probabilities in
// place (formulas above) and returns lse. Key u takes part when ok is nil
// or ok[u]; the others get p = 0. At least one key must take part.
func attnProbsBI(s []float32, ok []bool, scale float32) float32 {
	mx := float32(math.Inf(-1))
	for u, x := range s {
		if ok == nil || ok[u] {
			x *= scale
			s[u] = x
			mx = max(mx, x)
		}
	}
	var sum float32
	for u, x := range s {
		if ok == nil || ok[u] {
			e := expf(x - mx)
			s[u] = e
			sum += e
		} else {
			s[u] = 0
		}
	}
	inv := 1 / sum
	for u := range s {
		s[u] *= inv
	}
	return mx + float32(math.Log(float64(sum)))
}

// attnBIScratch is one goroutine's buffers for AttentionForward.
type attnBIScratch struct {
	qh, oh, kh, vh []float32 // (g·T, HS), (g·T, HS), (T, HS), (T, HS)
	s              []float32 // (g·T, T)
	mx, sum        []float32 // attnProbsBlock's per-row results
	flag           []uint8
	pk, pv         PackedWeight
}

var attnBIPool sync.Pool

func getAttnBIScratch(g, T, HS int) *attnBIScratch {
	sc, _ := attnBIPool.Get().(*attnBIScratch)
	if sc == nil {
		sc = &attnBIScratch{}
	}
	grow := func(x []float32, n int) []float32 {
		if cap(x) < n {
			return make([]float32, n)
		}
		return x[:n]
	}
	sc.qh, sc.oh = grow(sc.qh, g*T*HS), grow(sc.oh, g*T*HS)
	sc.kh, sc.vh = grow(sc.kh, T*HS), grow(sc.vh, T*HS)
	sc.s = grow(sc.s, g*T*T)
	return sc
}

// attentionForwardBI is AttentionForward. Per (sequence, kv head) the g
// query heads' rows are laid out position-major (row t·g+j is query t of
// head h0+j), so that a block of positions [t0, t1) is one block of rows,
// and S and O are computed block by block over the keys [0, t1) only
// (attnBlock: causal block skipping, issue 16). Bits: see the header.
func attentionForwardBI(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	checkGQA(NH, NKV, HS)
	g := NH / NKV
	scale := attnScale(HS)
	parallelFor(B*NKV, 1, func(lo, hi int) {
		sc := getAttnBIScratch(g, T, HS)
		defer attnBIPool.Put(sc)
		for bk := lo; bk < hi; bk++ {
			b, kh := bk/NKV, bk%NKV
			h0 := kh * g
			for t := range T {
				ko := ((b*T+t)*NKV + kh) * HS
				copy(sc.kh[t*HS:(t+1)*HS], k[ko:ko+HS])
				copy(sc.vh[t*HS:(t+1)*HS], v[ko:ko+HS])
				qo := ((b*T+t)*NH + h0) * HS
				copy(sc.qh[t*g*HS:(t+1)*g*HS], q[qo:qo+g*HS])
			}
			PackWeight(&sc.pk, sc.kh, T, HS)  // keys as the weight's rows
			PackWeightT(&sc.pv, sc.vh, T, HS) // values as the weight's columns
			var vb []bool
			if valid != nil {
				vb = valid[b*T : (b+1)*T]
			}
			for t0 := 0; t0 < T; t0 += attnBlock {
				t1 := min(T, t0+attnBlock)
				attnForwardBlock(sc, lse[(b*NH+h0)*T:], vb, t0, t1, T, g, HS, scale)
			}
			for t := range T {
				qo := ((b*T+t)*NH + h0) * HS
				copy(out[qo:qo+g*HS], sc.oh[t*g*HS:(t+1)*g*HS])
			}
		}
	})
}

// attnBlock is the number of query positions per block of the causal
// block skipping (forward and backward): a block [t0, t1) needs the keys
// [0, t1) only.
const attnBlock = 32

// attnForwardBlock computes the rows of positions [t0, t1) of the g query
// heads in sc: S = Q·Kᵀ over keys [0, t1), the probabilities (lse (g, T)
// of the heads), O = P·V over keys [0, t1). valid is the sequence's (nil:
// every position).
//
// Same bits as over all T keys (attentionForwardFullT in the tests) for
// finite inputs: an element of S for a key u ≥ t1 is never read (u > t
// is masked), and in O's chains the keys u ≥ t1 were trailing terms
// fma(+0, v, acc) (p = +0), which leave acc as it is unless it is −0: a
// chain starts at +0 and reaches −0 only when an FMA's exact result is
// negative and under half the smallest subnormal (p·v underflowing), and
// a later +0·v (v's sign bit clear) turns it into +0. attnFixNegZero
// gives those outputs exactly that. (Such a −0 is also where the forward
// over T keys and the decode over t+1 differ, as they always have.)
func attnForwardBlock(sc *attnBIScratch, lse []float32, valid []bool, t0, t1, T, g, HS int, scale float32) {
	m := (t1 - t0) * g
	pk := PackedWeight{N: t1, K: HS, ps: sc.pk.ps, data: sc.pk.data}
	gs := biGemm{out: sc.s[t0*g*T:], inp: sc.qh[t0*g*HS:], ldo: T, lda: HS, ldk: 1, pw: &pk}
	gs.run(m, false)
	attnProbsBlock(sc.s, valid, t0, t1, g, T, scale, lse, sc)
	pv := PackedWeight{N: HS, K: t1, ps: sc.pv.ps, data: sc.pv.data}
	gv := biGemm{out: sc.oh[t0*g*HS:], inp: sc.s[t0*g*T:], ldo: HS, lda: T, ldk: 1, pw: &pv}
	gv.run(m, false)
	attnFixNegZero(sc.oh[t0*g*HS:], HS, m, HS, sc.vh, HS, t1, T)
}

// biGemmSerial is MatmulForwardBI without bias on the calling goroutine.
func biGemmSerial(out, inp []float32, pw *PackedWeight, M int) {
	g := biGemm{out: out[:M*pw.N], inp: inp[:M*pw.K], ldo: pw.N, lda: pw.K, ldk: 1, pw: pw}
	g.run(M, false)
}

// KVCacheBI is one sequence's keys and values for one layer, packed for
// AttentionDecodeBI: per kv head, the keys as the rows of a PackedWeight
// (N = keys, K = HS) and the values as its columns (N = HS, K = keys, with
// room for Cap keys). Keys are stored after RoPE.
type KVCacheBI struct {
	NKV, HS    int
	n, cap     int
	k, v       []PackedWeight // (NKV) views of kall, vall
	kall, vall []float32      // every head's panels, ks and vs floats apart
	ks, vs     int
}

// NewKVCacheBI returns an empty cache with room for capacity keys (it
// grows as needed).
func NewKVCacheBI(NKV, HS, capacity int) *KVCacheBI {
	c := &KVCacheBI{NKV: NKV, HS: HS, k: make([]PackedWeight, NKV), v: make([]PackedWeight, NKV)}
	c.grow(max(capacity, 1))
	return c
}

// Len is the number of keys in the cache.
func (c *KVCacheBI) Len() int { return c.n }

// grow reallocates for capacity keys, keeping the content.
func (c *KVCacheBI) grow(capacity int) {
	HS := c.HS
	kp := (capacity + biPanel - 1) / biPanel
	capacity = kp * biPanel
	vp := (HS + biPanel - 1) / biPanel
	ks, vs := kp*biPanel*HS, vp*biPanel*capacity
	kall, vall := make([]float32, c.NKV*ks), make([]float32, c.NKV*vs)
	for h := range c.NKV {
		k := kall[h*ks : (h+1)*ks : (h+1)*ks]
		copy(k, c.k[h].data)
		c.k[h] = PackedWeight{N: c.n, K: HS, ps: biPanel * HS, data: k}
		v := vall[h*vs : (h+1)*vs : (h+1)*vs]
		for p := range vp {
			if c.cap > 0 {
				copy(v[p*biPanel*capacity:p*biPanel*capacity+biPanel*c.n], c.v[h].data[p*c.v[h].ps:])
			}
		}
		c.v[h] = PackedWeight{N: HS, K: c.n, ps: biPanel * capacity, data: v}
	}
	c.kall, c.vall, c.ks, c.vs = kall, vall, ks, vs
	c.cap = capacity
}

// Append adds the key and value of the next position: k, v (NKV·HS), the
// key after RoPE.
func (c *KVCacheBI) Append(k, v []float32) {
	HS := c.HS
	if c.n == c.cap {
		c.grow(2 * c.cap)
	}
	u := c.n
	for h := range c.NKV {
		kd := c.k[h].data[(u/biPanel)*biPanel*HS:]
		for d, x := range k[h*HS : (h+1)*HS] {
			kd[d*biPanel+u%biPanel] = x
		}
		vw := &c.v[h]
		for p := 0; p*biPanel < HS; p++ {
			w := min(biPanel, HS-p*biPanel)
			copy(vw.data[p*vw.ps+u*biPanel:p*vw.ps+u*biPanel+w], v[h*HS+p*biPanel:h*HS+p*biPanel+w])
		}
	}
	c.n++
}

// CopyPrefix makes c hold the first n keys of src (same NKV and HS).
func (c *KVCacheBI) CopyPrefix(src *KVCacheBI, n int) {
	if src.NKV != c.NKV || src.HS != c.HS || n > src.n {
		panic(fmt.Sprintf("kernels: kv cache copy: %d keys of a %d-key cache (%dx%d into %dx%d)", n, src.n, src.NKV, src.HS, c.NKV, c.HS))
	}
	if c.cap < n {
		c.grow(n)
	}
	HS := c.HS
	for h := range c.NKV {
		copy(c.k[h].data[:((n+biPanel-1)/biPanel)*biPanel*HS], src.k[h].data)
		for p := 0; p*biPanel < HS; p++ {
			copy(c.v[h].data[p*c.v[h].ps:p*c.v[h].ps+n*biPanel], src.v[h].data[p*src.v[h].ps:])
		}
	}
	c.n = n
}

// AttentionDecodeBI writes out (NH·HS), the attention output of one query
// q (NH·HS, after RoPE) at position n−1 over the first n keys of c, with
// AttentionForward's operations (same bits as the forward's row for that
// position). s is scratch of at least NH·n floats.
func AttentionDecodeBI(out, q []float32, c *KVCacheBI, n, NH int, s []float32) {
	NKV, HS := c.NKV, c.HS
	checkGQA(NH, NKV, HS)
	if n < 1 || n > c.n {
		panic(fmt.Sprintf("kernels: attention decode: %d keys of a %d-key cache", n, c.n))
	}
	g := NH / NKV
	scale := attnScale(HS)
	s = s[:NH*n]
	// s (NH, n): per kv head, its g query rows times its keys; one call
	// for all heads (the calls, not the FLOPs, are the cost at decode sizes)
	pk := PackedWeight{N: n, K: HS, ps: biPanel * HS, data: c.kall}
	biGemmHeads(s, q[:NH*HS], &pk, c.ks, NKV, g)
	attnProbsRows(s, n, NH, scale)
	pv := PackedWeight{N: HS, K: n, ps: c.v[0].ps, data: c.vall}
	biGemmHeads(out[:NH*HS], s, &pv, c.vs, NKV, g)
}
