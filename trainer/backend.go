package trainer

import (
	"fmt"
	"slices"
	"sync"

	"github.com/rljob/rljob/kernels"
)

// Backend is the compute the model's forward, backward and loss head
// (model.go, bf16.go, lora.go), the sampler's decode (kvcache.go,
// sample.go) and the optimizer (optim.go) reach: one method per kernel, named and
// shaped as kernels' functions and kernels/cuda's Device methods, outputs
// first. The orchestration (which layer, which buffer, which chunk) stays
// in Model, once; a backend only computes.
//
// Two implementations: cpuBackend (package kernels; the bits every test
// and golden digest pins) and cudaBackend (kernels/cuda, cuda_backend*.go,
// in a `make build-cuda` binary); mirrorBackend, the CPU's kernels on a
// second copy of the kept buffers, checks in tests that the model keeps
// the residency rules. Tensors are host []float32 slices (and the CPU
// kernels' packed weight types as handles); a device backend may keep
// its own copy of the model's large buffers (Keep, resident.go), which
// then stay on the device from call to call while the model brackets its
// host reads and writes of them with ToHost and FromHost (docs/cuda.md,
// "Device residency").
//
// A method must not fail on valid shapes; shapes are the model's to get
// right (kernels panics on a mismatch, as before). A device failure (out
// of memory, a kernel's launch or device-side error) is not a panic: the
// backend keeps the first one (Err) and the trainer checks it at the end
// of each forward, backward, decode pass and optimizer step (backendErr),
// so the stage fails with an error naming itself before it commits.
type Backend interface {
	// Name is "cpu" or "cuda: <card>, device <n>".
	Name() string
	// Err is the first compute error since the backend opened (the
	// kernel's name and CUDA's error string); nil for the CPU. Outputs
	// computed after it are undefined. It stays set: a failed backend
	// fails every later step too.
	Err() error

	// Zero sets x to 0 (accumulating outputs are cleared with it).
	Zero(x []float32)
	// RoundBF16 rounds x to bf16 in place (the bf16 embedding's rows).
	RoundBF16(x []float32)

	EmbeddingForward(out, wte []float32, tokens []int32, N, C int)
	EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int)
	RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32)
	RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int)
	RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32)
	RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32)
	AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int)
	AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int)
	SwiGLUForward(out, gate, up []float32, N int)
	SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int)
	ResidualForward(out, a, b []float32, N int)
	// ScaleAdd sets out = out + s·x (add) or out = s·x over len(x)
	// elements, the product rounded to float32 before the add (LoRA's
	// scale, lora.go).
	ScaleAdd(out, x []float32, s float32, add bool)

	// MatmulForward is the batch-invariant fp32 linear layer:
	// out (N, OC) = inp (N, C)·weightᵀ + bias.
	MatmulForward(out, inp, weight, bias []float32, N, C, OC int)
	// MatmulBackward accumulates dinp, dweight and dbias (each may be nil).
	MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int)
	// PackWeight packs weight (N, K) for MatmulForwardPacked, reusing pw.
	PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight
	// MatmulForwardPacked is MatmulForward on a packed weight (the same bits).
	MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int)
	// FreeWeight releases now what PackWeight prepared for pw (a device
	// copy), which must not be used afterwards; without it the copy goes
	// when pw is garbage collected. The CPU has nothing to free early.
	FreeWeight(pw *kernels.PackedWeight)

	// bf16: weights packed as bf16, inputs rounded, float32 accumulation.
	PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16
	PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) *kernels.PackedWeightBF16
	MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int)
	MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int)
	MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int)

	// The loss head, per chunk of rows (kernels.HeadForward's contract).
	HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32)
	HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32)
	HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int)

	// The sampler's decode (kvcache.go, sample.go).
	//
	// NewKVCache returns an empty cache of one sequence's keys and values
	// at one layer, in this backend's layout and memory (the CUDA
	// backend's on the GPU), with room for capacity positions (it grows).
	NewKVCache(NKV, HS, capacity int) KVCache
	// AttentionDecode writes out (R, NH·HS): row i's query q (R, NH·HS,
	// after RoPE) at position lens[i]−1 over the first lens[i] keys of
	// caches[i] (R = len(caches)), kernels.AttentionDecodeBI's operations
	// (AttentionForward's bits for that row). Rows may share a cache.
	AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int)
	// AppendKV appends row i of k and of v (kvd floats each: a pass's new
	// keys after RoPE and values) to caches[i], as caches[i].Append does,
	// for the R = len(caches) rows. A device backend copies them from its
	// own copy of k and v (Keep): they do not come to the host.
	AppendKV(caches []KVCache, k, v []float32, kvd int)
	// Sample picks one token per row of logits (N rows, ld floats apart,
	// ids < V sampleable) by the sampler's rule (sample.go's pickRow) with
	// row i's uniform draw u[i] (unused, and u may be nil, when temp = 0),
	// writing tok (N) and its log-probability logp (N).
	Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64)

	// The optimizer (optim.go). AdamWStep is kernels.AdamWStep on params
	// and grads (n = len(params)) with o's moments [off, off+n). A backend
	// may keep o's moments in its own memory from one step to the next
	// (the CUDA backend: on the GPU); it then records itself with o.keptBy,
	// and o.M, o.V are stale until o.SyncMoments calls its FetchMoments.
	// DropMoments frees what it keeps for o (o released, or stepped on
	// another backend). The CPU's steps o.M, o.V in place and keeps nothing.
	AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool)
	FetchMoments(o *AdamW)
	DropMoments(o *AdamW)
	GradNorm(g []float32) float64

	// Residency (resident.go). Keep lets the backend hold its own copy of
	// x, a whole buffer the model owns (its parameters, gradients and
	// activation arena), and compute on it from call to call, so that
	// only what the host reads or writes moves (the CUDA backend: device
	// memory). The host must then call ToHost(v) before it reads a view v
	// of x, and FromHost(v) after it writes v. Forget ends it (the host
	// copy is left as it is: ToHost first to keep the backend's values).
	// The CPU computes on the host's memory: all four do nothing.
	Keep(x []float32, name string)
	Forget(x []float32)
	ToHost(x []float32)
	FromHost(x []float32)
}

// KVCache is one sequence's keys and values at one layer, made by a
// backend's NewKVCache and read by its AttentionDecode.
type KVCache interface {
	// Len is the number of positions held.
	Len() int
	// Append adds the next position's key (after RoPE) and value (NKV·HS each).
	Append(k, v []float32)
	// CopyPrefix makes the cache hold the first n positions of src (a
	// cache of the same backend and shape).
	CopyPrefix(src KVCache, n int)
	// Release frees the cache's memory now (on a GPU, its device buffer);
	// the cache must not be used afterwards. The sampler releases every
	// cache it makes, when its sequence ends or its Generate returns:
	// without it a device cache is freed only when the garbage collector,
	// which sees a small handle, finds it. The CPU's does nothing (its
	// caches are Go memory).
	Release()
}

// DeviceError is a backend's failure (a CUDA error, out of GPU memory)
// surfacing from a forward, backward, decode or update: a fault of the
// machine, not of the job's input, so stages report it as a run error
// (exit 1), not a usage error.
type DeviceError struct {
	What, Backend string
	Err           error
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("trainer: %s on %s failed: %v", e.What, e.Backend, e.Err)
}

func (e *DeviceError) Unwrap() error { return e.Err }

// backendErr is be's sticky error as the error of what (e.g. "forward"),
// naming the backend; nil when there is none.
func backendErr(be Backend, what string) error {
	if err := be.Err(); err != nil {
		return &DeviceError{What: what, Backend: be.Name(), Err: err}
	}
	return nil
}

// cpuBackend is the Backend of package kernels (the host's cores).
type cpuBackend struct{}

// cpu is the CPU backend every model uses today.
var cpu Backend = cpuBackend{}

func (cpuBackend) Name() string { return "cpu" }
func (cpuBackend) Err() error   { return nil }

func (cpuBackend) Zero(x []float32)      { parallelClear(x) }
func (cpuBackend) RoundBF16(x []float32) { roundBF16(x) }

func (cpuBackend) EmbeddingForward(out, wte []float32, tokens []int32, N, C int) {
	kernels.EmbeddingForward(out, wte, tokens, N, C)
}

func (cpuBackend) EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	kernels.EmbeddingBackward(dwte, dout, tokens, N, C)
}

func (cpuBackend) RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	kernels.RMSNormForward(out, rstd, inp, weight, N, C, eps)
}

func (cpuBackend) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	kernels.RMSNormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
}

func (cpuBackend) RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	kernels.RopeForward(out, inp, pos, N, NH, HS, theta)
}

func (cpuBackend) RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	kernels.RopeBackward(dinp, dout, pos, N, NH, HS, theta)
}

func (cpuBackend) AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	kernels.AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
}

func (cpuBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	kernels.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

func (cpuBackend) SwiGLUForward(out, gate, up []float32, N int) {
	kernels.SwiGLUForward(out, gate, up, N)
}

func (cpuBackend) SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int) {
	kernels.SwiGLUBackward(dgate, dup, dout, gate, up, N)
}

func (cpuBackend) ResidualForward(out, a, b []float32, N int) {
	kernels.ResidualForward(out, a, b, N)
}

func (cpuBackend) ScaleAdd(out, x []float32, s float32, add bool) {
	out = out[:len(x)]
	parallelFor(len(x), 1<<14, func(a, b int) {
		if add {
			for i := a; i < b; i++ {
				out[i] += float32(s * x[i]) // two roundings, never fused: the same on every backend
			}
			return
		}
		for i := a; i < b; i++ {
			out[i] = s * x[i]
		}
	})
}

func (cpuBackend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	kernels.MatmulForwardInvariant(out, inp, weight, bias, N, C, OC)
}

func (cpuBackend) MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	kernels.MatmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}

func (cpuBackend) PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight {
	return kernels.PackWeight(pw, weight, N, K)
}

func (cpuBackend) FreeWeight(*kernels.PackedWeight) {}

func (cpuBackend) MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int) {
	kernels.MatmulForwardBI(out, inp, pw, bias, N)
}

func (cpuBackend) PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16 {
	return kernels.PackWeightBF16(pw, weight, N, K)
}

func (cpuBackend) PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) *kernels.PackedWeightBF16 {
	return kernels.PackWeightBF16T(pw, weight, K, N)
}

func (cpuBackend) MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int) {
	kernels.MatmulForwardBF16(out, inp, pw, bias, N)
}

func (cpuBackend) MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	kernels.MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}

func (cpuBackend) MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	kernels.MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight, wT, N, C, OC)
}

func (cpuBackend) HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	kernels.HeadForward(e, r, lse, logp, ent, logits, targets, N, V, VL, temp)
}

func (cpuBackend) HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	kernels.HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent, targets, N, V, VL, temp)
}

func (cpuBackend) HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int) {
	kernels.HeadBackwardCE(e, r, dloss, targets, count, N, V)
}

// cpuKV is the CPU's KVCache: kernels' batch-invariant packed cache.
type cpuKV struct{ *kernels.KVCacheBI }

func (c cpuKV) CopyPrefix(src KVCache, n int) { c.KVCacheBI.CopyPrefix(src.(cpuKV).KVCacheBI, n) }

func (cpuKV) Release() {}

func (cpuBackend) NewKVCache(NKV, HS, capacity int) KVCache {
	return cpuKV{kernels.NewKVCacheBI(NKV, HS, capacity)}
}

// decodeScratch holds attention scores (NH·n floats) for AttentionDecode.
var decodeScratch = sync.Pool{New: func() any { return new([]float32) }}

func (cpuBackend) AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int) {
	parallelFor(len(caches), 4, func(lo, hi int) {
		s := decodeScratch.Get().(*[]float32)
		for i := lo; i < hi; i++ {
			c, n := caches[i].(cpuKV).KVCacheBI, int(lens[i])
			qd := NH * c.HS
			*s = slices.Grow((*s)[:0], NH*n)[:NH*n]
			kernels.AttentionDecodeBI(out[i*qd:(i+1)*qd], q[i*qd:(i+1)*qd], c, n, NH, *s)
		}
		decodeScratch.Put(s)
	})
}

func (cpuBackend) AppendKV(caches []KVCache, k, v []float32, kvd int) {
	for i, c := range caches {
		c.Append(k[i*kvd:(i+1)*kvd], v[i*kvd:(i+1)*kvd])
	}
}

// pickBufs is pickRow's scratch, per vocabulary entry.
type pickBufs struct {
	w     []float64
	order []int32
}

var pickScratch = sync.Pool{New: func() any { return new(pickBufs) }}

// Sample picks the rows in parallel (each row alone: the same bits).
func (cpuBackend) Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64) {
	parallelFor(N, 1, func(lo, hi int) {
		sc := pickScratch.Get().(*pickBufs)
		sc.w = slices.Grow(sc.w[:0], V)[:V]
		sc.order = slices.Grow(sc.order[:0], V)[:V]
		for i := lo; i < hi; i++ {
			var ui float64
			if temp > 0 {
				ui = u[i]
			}
			tok[i], logp[i] = pickRow(logits[i*ld:i*ld+V], temp, topK, topP, ui, sc.w, sc.order)
		}
		pickScratch.Put(sc)
	})
}

func (cpuBackend) AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	e := off + len(params)
	kernels.AdamWStep(params, o.M[off:e], o.V[off:e], grads, gradScale, cfg, t, zeroGrads)
}

func (cpuBackend) FetchMoments(*AdamW) {}
func (cpuBackend) DropMoments(*AdamW)  {}

func (cpuBackend) GradNorm(g []float32) float64 { return kernels.GradNorm(g) }

func (cpuBackend) Keep([]float32, string) {}
func (cpuBackend) Forget([]float32)       {}
func (cpuBackend) ToHost([]float32)       {}
func (cpuBackend) FromHost([]float32)     {}
