package trainer

import (
	"math"
	"sync"

	"github.com/rljob/rljob/kernels"
)

// mirrorBackend is the CPU backend computing, as a device backend does, on
// its own copy of every kept buffer (Keep): a second Go slice per buffer,
// with resident.go's bookkeeping. Each method brings its inputs' copies
// current, runs the CPU kernel on the copies and marks its outputs as the
// copy's, writing NaN over the host's now stale elements. So a model that
// reads a kept buffer without ToHost reads NaN, and one that writes it
// without FromHost computes on the old values: either way its results
// differ from the CPU backend's, which is how the tests (MirrorBackend in
// trainer's and cmd/rljob's) check that the model keeps the rules the
// CUDA backend relies on, on a machine without a GPU. Not a device a user
// selects.
type mirrorBackend struct {
	mu  sync.Mutex
	set residentSet[[]float32]
}

// mirrorMem is the mirror's "device memory": Go slices.
type mirrorMem struct{}

func (mirrorMem) alloc(n int, _ string) []float32            { return make([]float32, n) }
func (mirrorMem) free([]float32)                             {}
func (mirrorMem) upload(dst []float32, off int, x []float32) { copy(dst[off:off+len(x)], x) }
func (mirrorMem) download(x, src []float32, off int)         { copy(x, src[off:off+len(x)]) }

// MirrorBackend returns a new mirror backend (see mirrorBackend): for
// tests, with OverrideCUDA, of the residency rules a device backend
// relies on.
func MirrorBackend() Backend { return &mirrorBackend{set: residentSet[[]float32]{mem: mirrorMem{}}} }

func (b *mirrorBackend) Name() string { return "mirror" }
func (b *mirrorBackend) Err() error   { return nil }

// lock holds b for one method: defer b.lock()().
func (b *mirrorBackend) lock() func() {
	b.mu.Lock()
	return b.mu.Unlock
}

// dev is x's copy, made current (x itself when x is not kept).
func (b *mirrorBackend) dev(x []float32) []float32 {
	r, off := b.set.in(x)
	if r == nil {
		return x
	}
	return r.dev[off : off+len(x) : off+len(x)]
}

// out is dev(x) for an output: the copy becomes x's current value and
// the host's is overwritten with NaN (stale).
func (b *mirrorBackend) out(x []float32) []float32 {
	d := b.dev(x)
	if r, _ := b.set.out(x); r != nil {
		for i := range x {
			x[i] = float32(math.NaN())
		}
	}
	return d
}

func (b *mirrorBackend) Keep(x []float32, name string) {
	defer b.lock()()
	b.set.sweep()
	b.set.keep(x, name)
}

func (b *mirrorBackend) Forget(x []float32) {
	defer b.lock()()
	b.set.forget(x)
}

func (b *mirrorBackend) ToHost(x []float32) {
	defer b.lock()()
	b.set.toHost(x)
}

func (b *mirrorBackend) FromHost(x []float32) {
	defer b.lock()()
	b.set.fromHost(x)
}

func (b *mirrorBackend) Zero(x []float32) {
	defer b.lock()()
	cpu.Zero(b.out(x))
}

func (b *mirrorBackend) RoundBF16(x []float32) {
	defer b.lock()()
	cpu.RoundBF16(b.out(x))
}

func (b *mirrorBackend) EmbeddingForward(out, wte []float32, tokens []int32, N, C int) {
	defer b.lock()()
	w := b.dev(wte)
	cpu.EmbeddingForward(b.out(out), w, tokens, N, C)
}

func (b *mirrorBackend) EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	defer b.lock()()
	d := b.dev(dout)
	cpu.EmbeddingBackward(b.out(dwte), d, tokens, N, C)
}

func (b *mirrorBackend) RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	defer b.lock()()
	x, w := b.dev(inp), b.dev(weight)
	cpu.RMSNormForward(b.out(out), b.out(rstd), x, w, N, C, eps)
}

func (b *mirrorBackend) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	defer b.lock()()
	d, x, w, r := b.dev(dout), b.dev(inp), b.dev(weight), b.dev(rstd)
	cpu.RMSNormBackward(b.out(dinp), b.out(dweight), d, x, w, r, N, C)
}

func (b *mirrorBackend) RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	defer b.lock()()
	x := b.dev(inp)
	cpu.RopeForward(b.out(out), x, pos, N, NH, HS, theta)
}

func (b *mirrorBackend) RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	defer b.lock()()
	d := b.dev(dout)
	cpu.RopeBackward(b.out(dinp), d, pos, N, NH, HS, theta)
}

func (b *mirrorBackend) AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	defer b.lock()()
	q, k, v = b.dev(q), b.dev(k), b.dev(v)
	cpu.AttentionForward(b.out(out), b.out(lse), q, k, v, valid, B, T, NH, NKV, HS)
}

func (b *mirrorBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	defer b.lock()()
	d, q, k, v, o, l := b.dev(dout), b.dev(q), b.dev(k), b.dev(v), b.dev(out), b.dev(lse)
	cpu.AttentionBackward(b.out(dq), b.out(dk), b.out(dv), d, q, k, v, o, l, valid, B, T, NH, NKV, HS)
}

func (b *mirrorBackend) SwiGLUForward(out, gate, up []float32, N int) {
	defer b.lock()()
	g, u := b.dev(gate), b.dev(up)
	cpu.SwiGLUForward(b.out(out), g, u, N)
}

func (b *mirrorBackend) SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int) {
	defer b.lock()()
	d, g, u := b.dev(dout), b.dev(gate), b.dev(up)
	cpu.SwiGLUBackward(b.out(dgate), b.out(dup), d, g, u, N)
}

func (b *mirrorBackend) ResidualForward(out, x, y []float32, N int) {
	defer b.lock()()
	x, y = b.dev(x), b.dev(y)
	cpu.ResidualForward(b.out(out), x, y, N)
}

func (b *mirrorBackend) ScaleAdd(out, x []float32, s float32, add bool) {
	defer b.lock()()
	x = b.dev(x)
	cpu.ScaleAdd(b.out(out[:len(x)]), x, s, add)
}

func (b *mirrorBackend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	defer b.lock()()
	x, w, bi := b.dev(inp), b.dev(weight), b.dev(bias)
	cpu.MatmulForward(b.out(out), x, w, bi, N, C, OC)
}

func (b *mirrorBackend) MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	defer b.lock()()
	d, x, w := b.dev(dout), b.dev(inp), b.dev(weight)
	cpu.MatmulBackward(b.out(dinp), b.out(dweight), b.out(dbias), d, x, w, N, C, OC)
}

func (b *mirrorBackend) PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight {
	defer b.lock()()
	return cpu.PackWeight(pw, b.dev(weight), N, K)
}

func (b *mirrorBackend) FreeWeight(pw *kernels.PackedWeight) {}

func (b *mirrorBackend) MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int) {
	defer b.lock()()
	x, bi := b.dev(inp), b.dev(bias)
	cpu.MatmulForwardPacked(b.out(out), x, pw, bi, N)
}

func (b *mirrorBackend) PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16 {
	defer b.lock()()
	return cpu.PackWeightBF16(pw, b.dev(weight), N, K)
}

func (b *mirrorBackend) PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) *kernels.PackedWeightBF16 {
	defer b.lock()()
	return cpu.PackWeightBF16T(pw, b.dev(weight), K, N)
}

func (b *mirrorBackend) MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int) {
	defer b.lock()()
	x, bi := b.dev(inp), b.dev(bias)
	cpu.MatmulForwardBF16(b.out(out), x, pw, bi, N)
}

func (b *mirrorBackend) MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	defer b.lock()()
	d, x, w := b.dev(dout), b.dev(inp), b.dev(weight)
	cpu.MatmulBackwardBF16(b.out(dinp), b.out(dweight), b.out(dbias), d, x, w, N, C, OC)
}

func (b *mirrorBackend) MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	defer b.lock()()
	d, x, w := b.dev(dout), b.dev(inp), b.dev(weight)
	cpu.MatmulBackwardBF16Packed(b.out(dinp), b.out(dweight), b.out(dbias), d, x, w, wT, N, C, OC)
}

func (b *mirrorBackend) HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	defer b.lock()()
	z := b.dev(logits)
	cpu.HeadForward(b.out(e), b.out(r), b.out(lse), b.out(logp), b.out(ent), z, targets, N, V, VL, temp)
}

func (b *mirrorBackend) HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	defer b.lock()()
	rr, dl, de, z, l, en := b.dev(r), b.dev(dlogp), b.dev(dent), b.dev(logits), b.dev(lse), b.dev(ent)
	cpu.HeadBackwardLogp(b.out(e), rr, dl, de, z, l, en, targets, N, V, VL, temp)
}

func (b *mirrorBackend) HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int) {
	defer b.lock()()
	rr := b.dev(r)
	cpu.HeadBackwardCE(b.out(e), rr, dloss, targets, count, N, V)
}

func (b *mirrorBackend) NewKVCache(NKV, HS, capacity int) KVCache {
	return cpu.NewKVCache(NKV, HS, capacity)
}

func (b *mirrorBackend) AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int) {
	defer b.lock()()
	x := b.dev(q)
	cpu.AttentionDecode(b.out(out), x, caches, lens, NH)
}

func (b *mirrorBackend) AppendKV(caches []KVCache, k, v []float32, kvd int) {
	defer b.lock()()
	k, v = b.dev(k), b.dev(v)
	cpu.AppendKV(caches, k, v, kvd)
}

func (b *mirrorBackend) Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64) {
	defer b.lock()()
	z := b.dev(logits)
	cpu.Sample(tok, b.out(logp), z, u, ld, N, V, temp, topK, topP)
}

func (b *mirrorBackend) AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	defer b.lock()()
	cpu.AdamWStep(b.out(params), b.out(grads), o, off, gradScale, cfg, t, zeroGrads)
}

func (b *mirrorBackend) FetchMoments(o *AdamW) {}
func (b *mirrorBackend) DropMoments(o *AdamW)  {}

func (b *mirrorBackend) GradNorm(g []float32) float64 {
	defer b.lock()()
	return cpu.GradNorm(b.dev(g))
}
