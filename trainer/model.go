package trainer

import (
	"fmt"
	"sync/atomic"

	"github.com/rljob/rljob/kernels"
)

// Model is a Llama/Qwen2 decoder with its parameters, gradients and the
// activations of the last forward pass. Forward and backward are written
// out layer by layer, in the style of llm.c, on the model's Backend
// (backend.go; today the CPU one, over package kernels).
//
// A Model is not safe for concurrent use: the activations are shared.
type Model struct {
	Config Config
	Table  []Tensor // named views; Params, Grads, AdamW.M/V all follow it
	Params []float32
	Grads  []float32
	W      Weights // views of Params
	G      Weights // views of Grads

	// VocabLimit is the number of token ids the model may produce: ids
	// ≥ VocabLimit (an embedding padded past the tokenizer's vocabulary,
	// as real Qwen2 checkpoints have) are never sampled and log-probs,
	// entropy and cross-entropy are normalised over ids < VocabLimit only
	// (their logits are masked to −∞). 0 means Config.VocabSize.
	// LoadCheckpoint sets it to the tokenizer's size.
	VocabLimit int

	// LoRA, when set, adds low-rank adapters to the targeted linear layers
	// of every forward (trainer and sampler alike) and freezes the base:
	// backward then computes gradients for the adapters only, and Grads is
	// never allocated.
	LoRA *LoRA

	// HeadChunk is the number of rows (tokens) the loss head runs at a
	// time: the (rows, vocab) logits and their gradient are the head's
	// only vocabulary-wide buffers. 0 picks the rows of headChunkBytes.
	HeadChunk int

	// Recompute keeps one layer's activations instead of every layer's:
	// the forward saves only each layer's input (the residual stream) and
	// the backward recomputes a layer's forward from it before
	// differentiating it. Gradients are bit-identical either way (the
	// kernels are deterministic); it costs one more forward of the layers
	// and saves about L−1 layers' activations (docs/memory.md). Set it
	// before the forward.
	Recompute bool

	// DType is the compute precision: DTypeFP32 ("" is the same) or
	// DTypeBF16 (bf16.go: bf16 weights and matmul inputs, float32
	// accumulation, fp32 master weights). Set it with SetDType.
	DType string

	be      Backend      // the compute the forward and backward call (backend.go)
	bf      *bf16Weights // the bf16 forms of the parameters, per forward (bf16 only)
	sampler *packedModel // a sample-only model's packed weights (sampleonly.go)
	acts    activations
	headPW  *kernels.PackedWeight // lm_head packed for MatmulForwardBI, per weights generation
	headGen uint64                // wgen+1 when headPW was packed, 0 for never
	// wgen counts the changes of the parameters (WeightsChanged): the
	// packed forms (headPW, bf) are rebuilt only when it has moved.
	wgen      uint64
	gradsZero bool    // Grads known to be all 0 (after ZeroGrad or Step)
	ropeT     float32 // rope theta as float32
	eps       float32 // rms_norm_eps as float32
	// noHeadSlices makes the backward take the head chunk of rows by chunk
	// where it would run by vocabulary slices (tests compare the two).
	noHeadSlices bool

	// what the last forward computed, for the matching backward
	fw struct {
		batch   Batch
		mode    int // fwNone, fwLogits, fwLogp, fwCE
		temp    float32
		entropy bool
		ceCount int
		// headKept: the head ran in one chunk and hexp still holds its
		// exp(z − max), so the backward need not recompute the logits.
		headKept bool
	}
}

const (
	fwNone = iota
	fwLogits
	fwLogp
	fwCE
)

// NewModel allocates a model with config c and initialises it with seed:
// every matrix ~ N(0, 0.02²), RMSNorm gains 1, biases 0 (as HF's
// initializer_range default).
func NewModel(c Config, seed uint64) (*Model, error) {
	m, err := newModelZero(c)
	if err != nil {
		return nil, err
	}
	initParams(m.Table, m.Params, seed, 0.02)
	return m, nil
}

// newModelZero allocates a model whose parameters are all zero.
func newModelZero(c Config) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := NumParams(c)
	m := &Model{
		Config: c,
		Table:  ParamTable(c),
		Params: takeFloats(n),
		be:     selectedBackend(),
		ropeT:  float32(c.RopeTheta),
		eps:    float32(c.RMSNormEps),
	}
	m.W = bindWeights(c, m.Table, m.Params)
	m.be.Keep(m.Params, "the parameters")
	return m, nil
}

// ensureGrads allocates Grads (zeroed) on the first backward of a model
// whose base is trained: a model that only samples or scores, or whose
// base is frozen under LoRA, never holds them.
func (m *Model) ensureGrads() {
	if m.LoRA != nil || m.Grads != nil {
		return
	}
	m.Grads = takeFloats(len(m.Params))
	m.be.Keep(m.Grads, "the gradients")
	m.G = bindWeights(m.Config, m.Table, m.Grads)
	m.gradsZero = true
}

// ZeroGrad sets every gradient to 0 (the adapters' under LoRA). Backward
// accumulates (+=) into Grads, so several backward passes (micro-batches)
// add up between ZeroGrad calls. It costs nothing right after Step, which
// leaves the gradients zeroed.
func (m *Model) ZeroGrad() {
	if m.LoRA != nil {
		m.be.Zero(m.LoRA.Grads)
		return
	}
	m.ensureGrads()
	if !m.gradsZero {
		m.be.Zero(m.Grads)
		m.gradsZero = true
	}
}

// Trainable returns what an optimizer updates: the adapters' table,
// parameters and gradients under LoRA, else the whole model's (which the
// caller may then change: WeightsChanged is implied).
func (m *Model) Trainable() (table []Tensor, params, grads []float32) {
	if m.LoRA != nil {
		return m.LoRA.Table, m.LoRA.Params, m.LoRA.Grads
	}
	m.ensureGrads()
	m.WeightsChanged()
	return m.Table, m.Params, m.Grads
}

// Tensor returns the parameter tensor called name (a view into Params,
// which the caller may read and change until the next forward:
// WeightsChanged is implied, and so are the backend's ToHost and
// FromHost).
func (m *Model) Tensor(name string) ([]float32, Tensor, bool) {
	t, ok := lookupTensor(m.Table, name)
	if !ok {
		return nil, Tensor{}, false
	}
	m.WeightsChanged()
	v := m.host(m.Params[t.Offset : t.Offset+t.Size])
	m.be.FromHost(v)
	return v, t, true
}

// host makes the host copy of x (a view of a buffer the backend may
// keep: Backend.Keep) current and returns x, for host code to read.
func (m *Model) host(x []float32) []float32 {
	m.be.ToHost(x)
	return x
}

// WeightsChanged tells the model that its parameters may have changed
// since the last forward. The forward packs the weights it multiplies by
// (lm_head, and in bf16 every matrix) once per change, not once per
// call: micro-batches between two optimizer steps, a logprobs stage's
// batches and a LoRA run's frozen base reuse one packing. Trainable,
// Tensor, Step, SetDType and loading call it; code that writes Params or
// W directly must call it before the next forward.
func (m *Model) WeightsChanged() { m.wgen++ }

// Batch is B token sequences, right-padded to T.
type Batch struct {
	Tokens []int32 // (B, T) row-major; entries at t >= Lens[b] are ignored
	Lens   []int   // (B) number of real tokens of each sequence, 1..T
	B, T   int
}

// Validate checks the batch's sizes and token ids against vocab.
func (b Batch) Validate(vocab, maxPos int) error {
	if b.B <= 0 || b.T <= 0 {
		return fmt.Errorf("trainer: batch %dx%d is empty", b.B, b.T)
	}
	if len(b.Tokens) != b.B*b.T || len(b.Lens) != b.B {
		return fmt.Errorf("trainer: batch %dx%d has %d tokens and %d lengths", b.B, b.T, len(b.Tokens), len(b.Lens))
	}
	if b.T > maxPos {
		return fmt.Errorf("trainer: batch length %d exceeds max_position_embeddings %d", b.T, maxPos)
	}
	for i, l := range b.Lens {
		if l < 1 || l > b.T {
			return fmt.Errorf("trainer: sequence %d has length %d, want 1..%d", i, l, b.T)
		}
		for t, id := range b.Tokens[i*b.T : i*b.T+l] {
			if id < 0 || int(id) >= vocab {
				return fmt.Errorf("trainer: sequence %d position %d: token %d outside vocabulary [0,%d)", i, t, id, vocab)
			}
		}
	}
	return nil
}

// NextTokenTargets returns the (B, T) targets for next-token log-probs:
// targets[b,t] = Tokens[b,t+1] where start[b] <= t+1 < Lens[b], else -1
// (ignored). start[b] is the index of the first token to score (the
// prompt length for completions); nil scores every token after the first.
func NextTokenTargets(b Batch, start []int) []int32 {
	tg := make([]int32, b.B*b.T)
	for i := range b.B {
		s := 1
		if start != nil {
			s = max(start[i], 1)
		}
		for t := range b.T {
			tg[i*b.T+t] = -1
			if t+1 >= s && t+1 < b.Lens[i] {
				tg[i*b.T+t] = b.Tokens[i*b.T+t+1]
			}
		}
	}
	return tg
}

// activations of one forward pass, sized for N = B*T rows and reused
// across steps (grown when a larger batch comes).
type activations struct {
	arena   []float32 // backs every float32 slice below
	B, T    int
	tokens  []int32     // (N) tokens with padding replaced by 0
	pos     []int32     // (N) position of each row (t)
	valid   []bool      // (B, T)
	resid   [][]float32 // L+1 × (N, C): input of each layer, then the final stream
	layers  []layerActs
	lnr     []float32 // (N, C) a layer's ln1, then ln2: the backward recomputes them
	x2r     []float32 // (N, C) a layer's x2: the backward recomputes it
	lnf     []float32 // (N, C)
	rstdf   []float32 // (N)
	hlog    []float32 // (chunk, V) logits of one head chunk
	hexp    []float32 // (chunk, V) exp(z − max) of one head chunk, then its dlogits
	full    []float32 // (N, V) Forward's logits only (allocated on its first call)
	lse     []float32 // (N)
	rinv    []float32 // (N) 1/Σ exp(z − max) per row (see kernels.HeadForward)
	mx      []float32 // (N) max z per row (kernels.HeadForwardMax; the CPU's head only)
	logp    []float32 // (N)
	ent     []float32 // (N)
	targets []int32   // (N)

	// backward scratch
	dresid  []float32 // (N, C)
	dln     []float32 // (N, C)
	dq, dqr []float32 // (N, H*hd)
	dk, dkr []float32 // (N, KV*hd)
	dv      []float32 // (N, KV*hd)
	datt    []float32 // (N, H*hd)
	dgate   []float32 // (N, I)
	dup     []float32 // (N, I)
	dh      []float32 // (N, I)
}

// layerActs are what one block saves for its backward. The backward
// recomputes the rest from them, with the forward's kernels (so the
// forward's bits): ln1 = RMSNorm(x), x2 = x + att·Woᵀ, ln2 = RMSNorm(x2),
// h = silu(gate)*up.
type layerActs struct {
	rstd1    []float32 // (N)
	q        []float32 // (N, H*hd)  after RoPE
	k, v     []float32 // (N, KV*hd) k after RoPE
	att      []float32 // (N, H*hd)  attention output before o_proj
	lse      []float32 // (B, H, T)
	rstd2    []float32 // (N)
	gate, up []float32 // (N, I)
}

// ensure lays the activations out for a B×T batch as exact-size views
// into one float32 arena, which is only reallocated when a batch needs
// more rows than any before (RL minibatches change T every step; the
// memory is reused).
func (m *Model) ensure(B, T int) {
	a := &m.acts
	N := B * T
	c := m.Config
	C, I, V, L := c.HiddenSize, c.IntermediateSize, c.VocabSize, c.NumLayers
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	ch := m.headChunk(N)
	saved := L // layers whose activations are kept
	if m.Recompute {
		saved = 1
	}
	need := activationFloats(c, B, T, ch, m.Recompute)
	if len(a.arena) < need {
		// The smaller arena is dropped, not pooled: kept in the pool it
		// would stay resident beside the new one (Reserve avoids the
		// growth altogether).
		m.be.Forget(a.arena)
		a.arena = nil
		a.arena = takeFloats(need)
		m.be.Keep(a.arena, fmt.Sprintf("the activations of %d×%d tokens", B, T))
	}
	if cap(a.tokens) < N {
		a.tokens, a.pos, a.targets, a.valid = make([]int32, N), make([]int32, N), make([]int32, N), make([]bool, N)
	}
	a.B, a.T = B, T
	a.tokens, a.pos, a.targets, a.valid = a.tokens[:N], a.pos[:N], a.targets[:N], a.valid[:N]
	used := 0
	f := func(n int) []float32 {
		v := a.arena[used : used+n : used+n]
		used += n
		return v
	}
	a.resid = a.resid[:0]
	for range L + 1 {
		a.resid = append(a.resid, f(N*C))
	}
	a.layers = a.layers[:0]
	for range saved {
		a.layers = append(a.layers, layerActs{
			rstd1: f(N), q: f(N * qd), k: f(N * kvd), v: f(N * kvd),
			att: f(N * qd), lse: f(B * c.NumHeads * T),
			rstd2: f(N), gate: f(N * I), up: f(N * I),
		})
	}
	a.lnr, a.x2r, a.lnf, a.rstdf, a.hlog, a.hexp = f(N*C), f(N*C), f(N*C), f(N), f(ch*V), f(ch*V)
	a.lse, a.rinv, a.logp, a.ent, a.mx = f(N), f(N), f(N), f(N), f(N)
	a.dresid, a.dln = f(N*C), f(N*C)
	a.dq, a.dqr, a.datt = f(N*qd), f(N*qd), f(N*qd)
	a.dk, a.dkr, a.dv = f(N*kvd), f(N*kvd), f(N*kvd)
	a.dgate, a.dup, a.dh = f(N*I), f(N*I), f(N*I)
	if used != need {
		panic("trainer: activation layout out of sync")
	}
}

// ---------------------------------------------------------------------------
// Per-layer pieces of the full-sequence forward; each works on N rows and
// takes explicit buffers (outputs first, as kernels does). Every matmul and
// the attention are the batch-invariant kernels (kernels.MatmulForwardBI's
// order), so a token's logits have the bits the sampler's KV-cache decode
// (kvcache.go) computes for it, whatever the batch: a rollout's logprobs
// and ForwardLogp's are equal (PPO ratio exactly 1 on the first update).
// The backward uses MatmulBackward (the same fixed-order FMA kernel).

// EmbedForward writes out (N, C) = embed_tokens[tokens].
func (m *Model) EmbedForward(out []float32, tokens []int32, N int) {
	if m.W.Embed == nil && m.sampler != nil {
		m.embedPacked(out[:N*m.Config.HiddenSize], tokens[:N])
		m.be.FromHost(out[:N*m.Config.HiddenSize])
	} else {
		m.be.EmbeddingForward(out, m.W.Embed, tokens, N, m.Config.HiddenSize)
	}
	if m.isBF16() {
		m.be.RoundBF16(out[:N*m.Config.HiddenSize])
	}
}

// QKVForward computes the attention inputs of layer l for N rows of x:
//
//	ln1 = RMSNorm(x)·input_layernorm          (N, C), rstd (N)
//	q = RoPE(ln1·Wqᵀ + bq, pos)               (N, H*hd)
//	k = RoPE(ln1·Wkᵀ + bk, pos)               (N, KV*hd)
//	v = ln1·Wvᵀ + bv                          (N, KV*hd)
//
// pos (N) is each row's absolute position. A sampler passes k and v as
// views into its cache rows.
func (m *Model) QKVForward(l int, q, k, v, ln1, rstd, x []float32, pos []int32, N int) {
	c := m.Config
	w, p := &m.cw().Layers[l], m.bfLayer(l)
	C, hd := c.HiddenSize, c.HeadDim()
	qd, kvd := c.NumHeads*hd, c.NumKVHeads*hd
	m.be.RMSNormForward(ln1, rstd, x, w.InputNorm, N, C, m.eps)
	m.linear(q, ln1, w.Wq, p.q, w.Bq, N, C, qd)
	m.linear(k, ln1, w.Wk, p.k, w.Bk, N, C, kvd)
	m.linear(v, ln1, w.Wv, p.v, w.Bv, N, C, kvd)
	m.loraAdd(q, ln1, l, loraQ, N)
	m.loraAdd(k, ln1, l, loraK, N)
	m.loraAdd(v, ln1, l, loraV, N)
	m.be.RopeForward(q, q, pos, N, c.NumHeads, hd, m.ropeT)
	m.be.RopeForward(k, k, pos, N, c.NumKVHeads, hd, m.ropeT)
}

// AttnOutForward writes xout (N, C) = x + att·Woᵀ for layer l, att (N, H*hd)
// the attention output. xout may alias x.
func (m *Model) AttnOutForward(l int, xout, att, x []float32, N int) {
	c := m.Config
	C := c.HiddenSize
	tmp := m.scratchNC(N)
	m.linear(tmp, att, m.W.Layers[l].Wo, m.bfLayer(l).o, nil, N, c.NumHeads*c.HeadDim(), C)
	m.loraAdd(tmp, att, l, loraO, N)
	m.be.ResidualForward(xout, x, tmp, N*C)
}

// MLPForward computes the second half of layer l:
//
//	ln2 = RMSNorm(x)·post_attention_layernorm  (N, C), rstd (N)
//	gate = ln2·Wgateᵀ, up = ln2·Wupᵀ           (N, I)
//	h = silu(gate)*up                          (N, I)
//	xout = x + h·Wdownᵀ                        (N, C); xout may alias x
func (m *Model) MLPForward(l int, xout, ln2, rstd, gate, up, h, x []float32, N int) {
	c := m.Config
	w, p := &m.cw().Layers[l], m.bfLayer(l)
	C, I := c.HiddenSize, c.IntermediateSize
	m.be.RMSNormForward(ln2, rstd, x, w.PostNorm, N, C, m.eps)
	m.linear(gate, ln2, w.Wgate, p.gate, nil, N, C, I)
	m.linear(up, ln2, w.Wup, p.up, nil, N, C, I)
	m.loraAdd(gate, ln2, l, loraGate, N)
	m.loraAdd(up, ln2, l, loraUp, N)
	m.be.SwiGLUForward(h, gate, up, N*I)
	tmp := m.scratchNC(N)
	m.linear(tmp, h, w.Wdown, p.down, nil, N, I, C)
	m.loraAdd(tmp, h, l, loraDown, N)
	m.be.ResidualForward(xout, x, tmp, N*C)
}

// FinalNorm writes lnf (N, C) = RMSNorm(x)·norm and rstd (N), the input
// of the LM head.
func (m *Model) FinalNorm(lnf, rstd, x []float32, N int) {
	m.be.RMSNormForward(lnf, rstd, x, m.cw().Norm, N, m.Config.HiddenSize, m.eps)
}

// packHead packs lm_head for this forward's chunks when the weights have
// changed since it was last packed (WeightsChanged), unless headStreamed.
func (m *Model) packHead() {
	c := m.Config
	if m.isBF16() {
		return // refreshBF16 packed it
	}
	if m.headStreamed() {
		m.headPW, m.headGen = nil, 0
		return
	}
	if m.headPW != nil && m.headGen == m.wgen+1 {
		return
	}
	m.headPW = m.be.PackWeight(m.headPW, m.W.LMHead, c.VocabSize, c.HiddenSize)
	m.headGen = m.wgen + 1
}

// headStreamed reports whether the fp32 head packs lm_head slice by slice
// at each chunk (kernels.MatmulForward, the bits of the packed product)
// instead of holding a packed copy: under LoRA on the CPU, where the
// frozen base's lm_head (with tied embeddings, the embedding too) would
// otherwise be held twice, 4·V·C bytes more, for a memory-bound repack per
// chunk (docs/memory.md). A device backend keeps its packed copy in the
// device's memory, not the host's, and would upload lm_head per chunk.
func (m *Model) headStreamed() bool {
	return m.LoRA != nil && !m.isBF16() && m.be.Name() == "cpu"
}

// headLogits writes the logits (rows, V) of rows lnf (rows, C) with the
// packed lm_head: MatmulForwardBI, so a row's logits do not depend on
// the chunking.
func (m *Model) headLogits(logits, lnf []float32, rows int) {
	c := m.Config
	switch {
	case m.isBF16():
		m.be.MatmulForwardBF16(logits, lnf, m.bf.head, nil, rows)
	case m.headPW == nil: // headStreamed
		m.be.MatmulForward(logits, lnf, m.W.LMHead, nil, rows, c.HiddenSize, c.VocabSize)
	default:
		m.be.MatmulForwardPacked(logits, lnf, m.headPW, nil, rows)
	}
}

// scratchNC is an (N, C) temporary for the branch outputs (the backward
// scratch dln doubles as it: forward and backward never overlap).
func (m *Model) scratchNC(N int) []float32 {
	C := m.Config.HiddenSize
	if len(m.acts.dln) < N*C {
		m.acts.dln = make([]float32, N*C)
	}
	return m.acts.dln[:N*C]
}

// ---------------------------------------------------------------------------
// Full-sequence forward and backward.

// forward runs the transformer over b up to the logits (B, T, V).
// Padded positions are computed on token 0 and masked out of attention, so
// they never influence the real positions.
func (m *Model) forward(b Batch) error {
	c := m.Config
	if m.sampler != nil {
		return errSampleOnly
	}
	if err := b.Validate(c.VocabSize, c.MaxPositionEmbeddings); err != nil {
		return err
	}
	m.ensure(b.B, b.T)
	a := &m.acts
	N := b.B * b.T
	for i := range b.B {
		for t := range b.T {
			n := i*b.T + t
			a.pos[n] = int32(t)
			a.valid[n] = t < b.Lens[i]
			a.tokens[n] = 0
			if a.valid[n] {
				a.tokens[n] = b.Tokens[n]
			}
		}
	}
	m.fw.batch = b
	m.fw.mode = fwNone
	if m.isBF16() {
		m.refreshBF16()
	}
	m.EmbedForward(a.resid[0], a.tokens, N)
	for l := range c.NumLayers {
		m.layerForward(l)
	}
	m.FinalNorm(a.lnf, a.rstdf, a.resid[c.NumLayers], N)
	m.packHead()
	return nil
}

// layerActs are the saved activations of layer l: its own, or the one
// shared set under Recompute.
func (m *Model) layerActs(l int) *layerActs {
	if m.Recompute {
		return &m.acts.layers[0]
	}
	return &m.acts.layers[l]
}

// layerForward runs layer l of the batch m.fw.batch from resid[l] to
// resid[l+1], saving its activations in layerActs(l).
func (m *Model) layerForward(l int) {
	c := m.Config
	a := &m.acts
	b := m.fw.batch
	N := b.B * b.T
	la := m.layerActs(l)
	x := a.resid[l]
	m.QKVForward(l, la.q, la.k, la.v, a.lnr[:N*c.HiddenSize], la.rstd1, x, a.pos, N)
	m.be.AttentionForward(la.att, la.lse, la.q, la.k, la.v, a.valid, b.B, b.T, c.NumHeads, c.NumKVHeads, c.HeadDim())
	m.AttnOutForward(l, a.x2r[:N*c.HiddenSize], la.att, x, N)
	// h goes to the backward's dh scratch (free during a forward, and
	// during the backward where Recompute calls this): the backward
	// recomputes it from gate and up.
	m.MLPForward(l, a.resid[l+1], a.lnr[:N*c.HiddenSize], la.rstd2, la.gate, la.up, a.dh[:N*c.IntermediateSize], a.x2r[:N*c.HiddenSize], N)
}

// Forward computes the logits of batch b and returns them as a (B, T, V)
// view, valid until the next forward. Rows of padded positions hold
// values for token 0 and should be ignored.
func (m *Model) Forward(b Batch) ([]float32, error) {
	if err := m.forward(b); err != nil {
		return nil, err
	}
	a := &m.acts
	N, C, V := b.B*b.T, m.Config.HiddenSize, m.Config.VocabSize
	if cap(a.full) < N*V {
		a.full = make([]float32, N*V)
	}
	a.full = a.full[:N*V]
	m.headLogits(a.full, a.lnf[:N*C], N)
	m.fw.mode = fwLogits
	return a.full, backendErr(m.be, "forward")
}

// ForwardLogp computes, for every position with targets[n] >= 0,
//
//	logp[n] = log softmax(logits[n]/temp)[targets[n]]      (B, T)
//	ent[n]  = −Σ_v p log p,  p = softmax(logits[n]/temp)   (B, T), only when entropy
//
// targets (B, T) are usually NextTokenTargets. logp is 0 where the target is
// negative; ent is computed for every position (mask it yourself). The
// returned slices are views valid until the next forward; ent is nil
// without entropy. temp must be > 0.
func (m *Model) ForwardLogp(b Batch, targets []int32, temp float32, entropy bool) (logp, ent []float32, err error) {
	if !(temp > 0) {
		return nil, nil, fmt.Errorf("trainer: forward logp: temperature %v must be > 0", temp)
	}
	if err := m.checkTargets(b, targets); err != nil {
		return nil, nil, err
	}
	if err := m.forward(b); err != nil {
		return nil, nil, err
	}
	a := &m.acts
	N := b.B * b.T
	copy(a.targets, targets)
	if entropy {
		ent = a.ent[:N]
	}
	m.fw.temp, m.fw.entropy = temp, entropy
	m.headForwardAll(N, temp, entropy)
	m.fw.mode, m.fw.temp, m.fw.entropy = fwLogp, temp, entropy
	if ent != nil {
		m.host(ent)
	}
	return m.host(a.logp[:N]), ent, backendErr(m.be, "forward")
}

// BackwardLogp accumulates into Grads the gradient of a loss L whose
// derivatives are dlogp[n] = ∂L/∂logp[n] and dent[n] = ∂L/∂ent[n] (B, T),
// for the last ForwardLogp. dent may be nil (and must be nil when the
// forward computed no entropy). Positions with a negative target get no
// logp gradient; give padded positions dent = 0. One backward per forward:
// the head's saved state is consumed.
func (m *Model) BackwardLogp(dlogp, dent []float32) error {
	if m.fw.mode != fwLogp {
		return fmt.Errorf("trainer: backward logp without a matching ForwardLogp")
	}
	b := m.fw.batch
	N, V := b.B*b.T, m.Config.VocabSize
	if len(dlogp) != N || (dent != nil && len(dent) != N) {
		return fmt.Errorf("trainer: backward logp: dlogp has %d values, dent %d, want %d", len(dlogp), len(dent), N)
	}
	if dent != nil && !m.fw.entropy {
		return fmt.Errorf("trainer: backward logp: dent given but the forward computed no entropy")
	}
	m.fw.mode = fwNone
	a, VL, temp := &m.acts, m.vocabLimit(), m.fw.temp
	m.backward(headLoss{
		rows: func(lo, rows int) {
			var dt []float32
			if dent != nil {
				dt = dent[lo : lo+rows]
			}
			m.be.HeadBackwardLogp(a.hexp[:rows*V], a.rinv[lo:lo+rows], dlogp[lo:lo+rows], dt, a.hlog[:rows*V],
				a.lse[lo:lo+rows], a.ent[lo:lo+rows], a.targets[lo:lo+rows], rows, V, VL, temp)
		},
		slice: func(sh slicedHead, d, logits []float32, N, W, v0 int) {
			sh.HeadSliceLogp(d, logits, a.mx, a.rinv, dlogp, dent, a.lse, a.ent, a.targets, N, W, v0, VL, temp)
		},
	})
	return backendErr(m.be, "backward")
}

// ForwardCE computes the SFT loss, the mean cross-entropy (temperature 1)
// over the positions whose target is not negative:
//
//	loss = (1/count) Σ_{n: targets[n] ≥ 0} −log softmax(logits[n])[targets[n]]
//
// It returns loss and count (loss is 0 when count is 0).
func (m *Model) ForwardCE(b Batch, targets []int32) (loss float32, count int, err error) {
	if err := m.checkTargets(b, targets); err != nil {
		return 0, 0, err
	}
	if err := m.forward(b); err != nil {
		return 0, 0, err
	}
	a := &m.acts
	N := b.B * b.T
	copy(a.targets, targets)
	m.fw.temp, m.fw.entropy = 1, false
	m.headForwardAll(N, 1, false)
	var sum float64 // in row order, as kernels.CrossEntropyForward
	logp := m.host(a.logp[:N])
	for n, t := range a.targets[:N] {
		if t >= 0 {
			sum += float64(-logp[n])
			count++
		}
	}
	if count > 0 {
		loss = float32(sum / float64(count))
	}
	m.fw.mode, m.fw.ceCount = fwCE, count
	return loss, count, backendErr(m.be, "forward")
}

// BackwardCE accumulates into Grads dloss · ∂loss/∂θ for the last
// ForwardCE (dloss = 1 for the plain mean; use count_i/Σcount to weight
// micro-batches by their token counts). One backward per forward.
func (m *Model) BackwardCE(dloss float32) error {
	if m.fw.mode != fwCE {
		return fmt.Errorf("trainer: backward CE without a matching ForwardCE")
	}
	V, count := m.Config.VocabSize, m.fw.ceCount
	m.fw.mode = fwNone
	a, VL := &m.acts, m.vocabLimit()
	m.backward(headLoss{
		rows: func(lo, rows int) {
			m.be.HeadBackwardCE(a.hexp[:rows*V], a.rinv[lo:lo+rows], dloss, a.targets[lo:lo+rows], count, rows, V)
		},
		slice: func(sh slicedHead, d, logits []float32, N, W, v0 int) {
			sh.HeadSliceCE(d, logits, a.mx, a.rinv, dloss, a.targets, count, N, W, v0, VL)
		},
	})
	return backendErr(m.be, "backward")
}

// vocabLimit is VocabLimit, or the config's vocabulary when it is 0 (or
// out of range).
func (m *Model) vocabLimit() int {
	if m.VocabLimit > 0 && m.VocabLimit < m.Config.VocabSize {
		return m.VocabLimit
	}
	return m.Config.VocabSize
}

// headChunkBytes is the size of one of the head's two (chunk, V) buffers
// when HeadChunk is 0.
const headChunkBytes = 32 << 20

// defaultHeadRows, when > 0, replaces headChunkBytes' rows as the default
// chunk (SetDefaultHeadRows).
var defaultHeadRows atomic.Int64

// SetDefaultHeadRows makes the head's default chunk (HeadChunk 0) rows
// rows instead of 32 MiB of logits, or restores that when rows is 0, and
// returns the previous setting. For tests: it lets a small model's stages
// run the multi-chunk head a 151,936-token vocabulary runs. Give an even
// number (bf16 sums the weight gradient's rows in pairs).
func SetDefaultHeadRows(rows int) int { return int(defaultHeadRows.Swap(int64(rows))) }

// headChunk is the number of rows the head runs at a time for N rows.
func (m *Model) headChunk(N int) int {
	ch := m.HeadChunk
	if ch <= 0 {
		ch = int(defaultHeadRows.Load())
	}
	if ch <= 0 {
		ch = max(1, headChunkBytes/(4*m.Config.VocabSize))
		if ch > 1 {
			ch -= ch % 2 // bf16 sums the weight gradient's rows in pairs: a chunk's end is a pair's
		}
	}
	return max(1, min(ch, N))
}

// headForwardAll runs the loss head over the N rows of lnf chunk by
// chunk: logits, then kernels.HeadForward's lse, logp, ent (when entropy)
// and rinv per row. The last chunk's exp(z − max) stays in hexp; when
// that chunk is all N rows the backward uses it as it is (headKept).
func (m *Model) headForwardAll(N int, temp float32, entropy bool) {
	ch := m.headChunk(N)
	for lo := 0; lo < N; lo += ch {
		m.headChunkForward(lo, min(ch, N-lo), temp, entropy)
	}
	m.fw.headKept = ch >= N
}

// headChunkForward computes the logits of rows [lo, lo+rows) into hlog and
// HeadForward's outputs for them.
func (m *Model) headChunkForward(lo, rows int, temp float32, entropy bool) {
	a := &m.acts
	C, V := m.Config.HiddenSize, m.Config.VocabSize
	m.headLogits(a.hlog[:rows*V], a.lnf[lo*C:(lo+rows)*C], rows)
	var ent []float32
	if entropy {
		ent = a.ent[lo : lo+rows]
	}
	if sh, ok := m.be.(slicedHead); ok {
		sh.HeadForwardMax(a.hexp[:rows*V], a.rinv[lo:lo+rows], a.lse[lo:lo+rows], a.logp[lo:lo+rows], ent,
			a.mx[lo:lo+rows], a.hlog[:rows*V], a.targets[lo:lo+rows], rows, V, m.vocabLimit(), temp)
		return
	}
	m.be.HeadForward(a.hexp[:rows*V], a.rinv[lo:lo+rows], a.lse[lo:lo+rows], a.logp[lo:lo+rows], ent,
		a.hlog[:rows*V], a.targets[lo:lo+rows], rows, V, m.vocabLimit(), temp)
}

func (m *Model) checkTargets(b Batch, targets []int32) error {
	if len(targets) != b.B*b.T {
		return fmt.Errorf("trainer: %d targets for a %dx%d batch", len(targets), b.B, b.T)
	}
	VL := m.vocabLimit()
	for n, t := range targets {
		if int(t) >= VL {
			if VL < m.Config.VocabSize {
				return fmt.Errorf("trainer: target %d at row %d is a padded id: the tokenizer has %d tokens (vocab_size %d)", t, n, VL, m.Config.VocabSize)
			}
			return fmt.Errorf("trainer: target %d at row %d outside vocabulary [0,%d)", t, n, m.Config.VocabSize)
		}
		if t >= 0 && n%b.T >= b.Lens[n/b.T] {
			return fmt.Errorf("trainer: target at padded position (sequence %d, t %d)", n/b.T, n%b.T)
		}
	}
	return nil
}

// headBackwardRows is the head's backward chunk of rows by chunk:
// dln (N, C) += dlogits·lm_head and lm_head's gradient += dlogitsᵀ·lnf.
func (m *Model) headBackwardRows(dln []float32, loss headLoss, N int) {
	a := &m.acts
	C, V := m.Config.HiddenSize, m.Config.VocabSize
	ch := m.headChunk(N)
	m.packHeadT()
	for lo := 0; lo < N; lo += ch {
		rows := min(ch, N-lo)
		if !m.fw.headKept {
			m.headChunkForward(lo, rows, m.fw.temp, m.fw.entropy)
		}
		loss.rows(lo, rows)
		m.headBackward(dln[lo*C:(lo+rows)*C], m.G.LMHead, a.hexp[:rows*V], a.lnf[lo*C:(lo+rows)*C], rows)
	}
}

// backward propagates the loss through the whole model, accumulating the
// parameter gradients into Grads (the adapters' under LoRA). The head runs
// by slices of the vocabulary where the backend can (headslice.go), else
// chunk by chunk as the forward did: for each chunk of rows, its logits and
// exp(z − max) are recomputed (unless the forward's single chunk is still
// there), loss.rows turns hexp into the chunk's dlogits, and the LM-head
// matmul's backward takes them. No (N, V) buffer exists.
func (m *Model) backward(loss headLoss) {
	m.ensureGrads()
	m.gradsZero = false
	c := m.Config
	a := &m.acts
	b := m.fw.batch
	N := b.B * b.T
	C, I, hd := c.HiddenSize, c.IntermediateSize, c.HeadDim()
	H, KV := c.NumHeads, c.NumKVHeads
	qd, kvd := H*hd, KV*hd
	W, G := m.cw(), &m.G
	dres := a.dresid[:N*C]
	dln := a.dln[:N*C]

	// head: logits = lnf·lm_headᵀ, lnf = RMSNorm(x_L)
	m.be.Zero(dln)
	if W := m.headSliceWidth(N); W > 0 {
		m.headBackwardSliced(dln, loss, N, W)
	} else {
		m.headBackwardRows(dln, loss, N)
	}
	m.fw.headKept = false
	m.refreshBF16T()
	m.be.Zero(dres)
	m.be.RMSNormBackward(dres, G.Norm, dln, a.resid[c.NumLayers], W.Norm, a.rstdf, N, C)

	for l := c.NumLayers - 1; l >= 0; l-- {
		if m.Recompute {
			m.layerForward(l) // the same bits as the forward's (resid[l+1] is rewritten unchanged)
		}
		la := m.layerActs(l)
		w, g, bl := &W.Layers[l], &LayerWeights{}, m.bfLayer(l) // a frozen base has no gradients
		if G.Layers != nil {
			g = &G.Layers[l]
		}
		x2 := a.x2r[:N*C]
		if !m.Recompute { // (layerForward wrote it)
			m.AttnOutForward(l, x2, la.att, a.resid[l], N) // the forward's bits
		}
		// MLP: x3 = x2 + h·Wdownᵀ; dres holds dL/dx3 and becomes dL/dx2.
		// h = silu(gate)*up is recomputed (the forward's bits) into dgate,
		// which is free until SwiGLUBackward.
		dh, dgate, dup := a.dh[:N*I], a.dgate[:N*I], a.dup[:N*I]
		h := dgate
		m.be.SwiGLUForward(h, la.gate, la.up, N*I)
		m.be.Zero(dh)
		m.linearBackward(dh, g.Wdown, nil, dres, h, w.Wdown, bl.downT, N, I, C)
		m.loraBackward(dh, dres, h, l, loraDown, N)
		m.be.Zero(dgate)
		m.be.Zero(dup)
		m.be.SwiGLUBackward(dgate, dup, dh, la.gate, la.up, N*I)
		ln2 := a.lnr[:N*C] // recomputed: the forward's bits (rstd2 rewritten unchanged)
		m.be.RMSNormForward(ln2, la.rstd2, x2, w.PostNorm, N, C, m.eps)
		m.be.Zero(dln)
		m.linearBackward(dln, g.Wgate, nil, dgate, ln2, w.Wgate, bl.gateT, N, C, I)
		m.linearBackward(dln, g.Wup, nil, dup, ln2, w.Wup, bl.upT, N, C, I)
		m.loraBackward(dln, dgate, ln2, l, loraGate, N)
		m.loraBackward(dln, dup, ln2, l, loraUp, N)
		m.be.RMSNormBackward(dres, g.PostNorm, dln, x2, w.PostNorm, la.rstd2, N, C)

		// attention: x2 = x + att·Woᵀ; dres becomes dL/dx.
		datt := a.datt[:N*qd]
		m.be.Zero(datt)
		m.linearBackward(datt, g.Wo, nil, dres, la.att, w.Wo, bl.oT, N, qd, C)
		m.loraBackward(datt, dres, la.att, l, loraO, N)
		dq, dk, dv := a.dq[:N*qd], a.dk[:N*kvd], a.dv[:N*kvd]
		m.be.Zero(dq)
		m.be.Zero(dk)
		m.be.Zero(dv)
		m.be.AttentionBackward(dq, dk, dv, datt, la.q, la.k, la.v, la.att, la.lse, a.valid, b.B, b.T, H, KV, hd)
		dqr, dkr := a.dqr[:N*qd], a.dkr[:N*kvd]
		m.be.Zero(dqr)
		m.be.Zero(dkr)
		m.be.RopeBackward(dqr, dq, a.pos, N, H, hd, m.ropeT)
		m.be.RopeBackward(dkr, dk, a.pos, N, KV, hd, m.ropeT)
		ln1 := a.lnr[:N*C] // recomputed, as ln2
		m.be.RMSNormForward(ln1, la.rstd1, a.resid[l], w.InputNorm, N, C, m.eps)
		m.be.Zero(dln)
		m.linearBackward(dln, g.Wq, g.Bq, dqr, ln1, w.Wq, bl.qT, N, C, qd)
		m.linearBackward(dln, g.Wk, g.Bk, dkr, ln1, w.Wk, bl.kT, N, C, kvd)
		m.linearBackward(dln, g.Wv, g.Bv, dv, ln1, w.Wv, bl.vT, N, C, kvd)
		m.loraBackward(dln, dqr, ln1, l, loraQ, N)
		m.loraBackward(dln, dkr, ln1, l, loraK, N)
		m.loraBackward(dln, dv, ln1, l, loraV, N)
		m.be.RMSNormBackward(dres, g.InputNorm, dln, a.resid[l], w.InputNorm, la.rstd1, N, C)
	}
	if G.Embed != nil {
		m.be.EmbeddingBackward(G.Embed, dres, a.tokens, N, C)
	}
}

// parallelClear zeroes x using all cores.
func parallelClear(x []float32) {
	parallelFor(len(x), 1<<16, func(lo, hi int) { clear(x[lo:hi]) })
}
