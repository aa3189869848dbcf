//go:build cuda && cgo

package trainer

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/kernels/cuda"
)

// cudaBackend is the Backend of kernels/cuda on one GPU (rljob run
// --device cuda). Every method runs its kernel on the device; none falls
// back to the CPU kernels. The buffers the model keeps (Keep: its
// parameters, gradients, activation arenas, LoRA adapters, the sampler's
// logits) have a device copy the kernels read and write in place, with
// resident.go's bookkeeping of which copy is current: a call moves only
// what the host wrote since (up) and nothing down; the host's ToHost
// fetches what it reads. Any other tensor is staged per call: uploaded
// (with the old value of an accumulated output) into per-slot staging
// buffers, the kernel launched, the outputs downloaded. The prepared
// weights of PackWeight and PackWeightBF16(T) are uploaded once per pack
// and stay on the device, keyed by (a weak pointer to) the handle
// returned, and freed when the handle is garbage collected (a released
// model's packs do not pile up on the GPU). The sampler's KV caches live
// on the device (devKV, cuda_backend_decode.go): a decode pass uploads
// only its new keys and values, and the attention reads the caches in
// place. The optimizer's moments stay on the device from step to step
// (devMoments, keyed like the packs by a weak pointer to the AdamW):
// AdamWStep moves only the parameters and gradients, and a checkpoint
// downloads the moments (AdamW.SyncMoments).
//
// The kernels mirror package kernels' bit for bit (docs/cuda.md), so a
// model on this backend gives the CPU backend's log-probs; the conformance
// tests (cuda_backend_test.go) check it on a GPU.
//
// Backend methods cannot return errors: a CUDA failure (out of memory, a
// launch error, a device-side range check) ends the method (must panics
// with a cudaFault, which enter's deferred function recovers) and becomes
// the backend's sticky error (Err: the first one, naming the kernel and
// CUDA's error string), which the trainer checks at the end of each
// forward, backward, decode pass and optimizer step: the stage fails with
// an error before it commits anything.
type cudaBackend struct {
	mu   sync.Mutex
	err  error // the first CUDA failure (Err)
	d    *cuda.Device
	rope map[ropeKey]*cuda.RopeTable
	fp32 map[weak.Pointer[kernels.PackedWeight]]*cuda.Buf     // PackWeight: the weight (N, K), fp32
	bf16 map[weak.Pointer[kernels.PackedWeightBF16]]*cuda.Buf // PackWeightBF16(T): the weight (N, K), bf16
	tmp  []float32                                            // host scratch for adopted rows (adoptRows)
	moms map[weak.Pointer[AdamW]]*devMoments                  // the optimizers' moments (AdamWStep)

	res      residentSet[*cuda.Buf] // the kept buffers' device copies (Keep; resident.go)
	staged   bool                   // tests: Keep keeps nothing, every call stages its tensors
	kv       *kvArena[*cuda.Buf]    // the device KV caches (cuda_backend_decode.go)
	kvK, kvV []*cuda.Buf            // AttentionDecode's rows' caches (scratch)
	kvRows   []cuda.RowCopy         // kvScatter's scratch
}

type ropeKey struct {
	hs    int
	theta float32
}

// openCUDABackend opens GPU 0 for UseDevice("cuda").
func openCUDABackend() (Backend, error) {
	d, err := cuda.Open(0)
	if err != nil {
		return nil, fmt.Errorf("no CUDA device: %v", err)
	}
	return newCUDABackend(d), nil
}

func newCUDABackend(d *cuda.Device) *cudaBackend {
	b := &cudaBackend{d: d, rope: map[ropeKey]*cuda.RopeTable{},
		fp32: map[weak.Pointer[kernels.PackedWeight]]*cuda.Buf{}, bf16: map[weak.Pointer[kernels.PackedWeightBF16]]*cuda.Buf{},
		moms: map[weak.Pointer[AdamW]]*devMoments{}}
	b.kv = newKVArena[*cuda.Buf](b)
	b.res.mem = cudaMem{b}
	return b
}

func (b *cudaBackend) Name() string { return fmt.Sprintf("cuda: %s, device %d", b.d.Name, b.d.Ordinal) }

// cudaFault carries a CUDA error from must to enter's recover.
type cudaFault struct{ err error }

// must ends the method on a CUDA error (see cudaBackend).
func (b *cudaBackend) must(err error) {
	if err != nil {
		panic(cudaFault{err})
	}
}

// enter locks b for one method (one stream); the function it returns,
// deferred, unlocks and turns a cudaFault into b's sticky error (the
// first kept). Any other panic (a shape bug) goes on.
//
//	defer b.enter()()
func (b *cudaBackend) enter() func() {
	b.mu.Lock()
	return func() {
		defer b.mu.Unlock()
		if r := recover(); r != nil {
			f, ok := r.(cudaFault)
			if !ok {
				panic(r)
			}
			if b.err == nil {
				b.err = f.err
			}
		}
	}
}

// Err is the first CUDA failure since the backend opened.
func (b *cudaBackend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// stage returns the staging buffer slot with room for n elements of dt.
func (b *cudaBackend) stage(slot string, dt cuda.DType, n int) *cuda.Buf {
	buf, err := b.d.Scratch("backend "+slot, dt, max(n, 1))
	b.must(err)
	return buf
}

// in is x on the device: the device copy of a kept x (Keep), made
// current, or x uploaded into staging slot; nil for a nil x (an absent
// argument).
func (b *cudaBackend) in(slot string, x []float32) *cuda.Buf {
	if x == nil {
		return nil
	}
	if r, off := b.res.in(x); r != nil {
		return r.dev.View(off, len(x))
	}
	buf := b.stage(slot, cuda.F32, len(x))
	b.must(b.d.Upload(buf, x))
	return buf
}

// out is where a kernel writes dst (every element): dst's device copy
// when it is kept, else staging slot; get then marks it written or
// downloads it. nil for a nil dst.
func (b *cudaBackend) out(slot string, dst []float32) *cuda.Buf {
	if dst == nil {
		return nil
	}
	if r, off := b.res.find(dst); r != nil {
		return r.dev.View(off, len(dst))
	}
	return b.stage(slot, cuda.F32, len(dst))
}

func (b *cudaBackend) ints(slot string, x []int32) *cuda.Buf {
	buf := b.stage(slot, cuda.I32, len(x))
	b.must(b.d.UploadInt32(buf, x))
	return buf
}

func (b *cudaBackend) mask(slot string, v []bool) *cuda.Buf {
	if v == nil {
		return nil
	}
	buf := b.stage(slot, cuda.U8, len(v))
	b.must(b.d.UploadBool(buf, v))
	return buf
}

// get takes a kernel's output dst from buf (out's, or in's for an
// accumulated output): a kept dst is marked as the device's (its host
// copy stale), any other is downloaded. Nothing for a nil dst.
func (b *cudaBackend) get(dst []float32, buf *cuda.Buf) {
	if dst == nil {
		return
	}
	if r, _ := b.res.out(dst); r != nil {
		return
	}
	b.must(b.d.Download(dst, buf))
}

// load copies x into dst on the device: from x's device copy when x is
// kept, else uploaded.
func (b *cudaBackend) load(dst *cuda.Buf, x []float32) {
	if r, off := b.res.in(x); r != nil {
		b.must(b.d.Copy(dst, r.dev.View(off, len(x)), len(x)))
		return
	}
	b.must(b.d.Upload(dst, x))
}

// cudaMem is the kept buffers' device memory (residentSet's devMem).
type cudaMem struct{ b *cudaBackend }

func (m cudaMem) alloc(n int, name string) *cuda.Buf {
	buf, err := m.b.d.Alloc(name, cuda.F32, n)
	m.b.must(err)
	return buf
}

func (m cudaMem) free(buf *cuda.Buf) {
	_ = m.b.d.Sync()
	buf.Free()
}

func (m cudaMem) upload(dst *cuda.Buf, off int, x []float32) {
	m.b.must(m.b.d.Upload(dst.View(off, len(x)), x))
}

func (m cudaMem) download(x []float32, src *cuda.Buf, off int) {
	m.b.must(m.b.d.Download(x, src.View(off, len(x))))
}

// Keep gives x a device copy (uploaded as kernels first read it), which
// the kernels then read and write in place (resident.go).
func (b *cudaBackend) Keep(x []float32, name string) {
	defer b.enter()()
	if b.staged {
		return
	}
	b.res.sweep()
	b.res.keep(x, name)
}

// Forget frees x's device copy.
func (b *cudaBackend) Forget(x []float32) {
	defer b.enter()()
	b.res.forget(x)
}

// ToHost downloads the elements of x the device has newer.
func (b *cudaBackend) ToHost(x []float32) {
	defer b.enter()()
	b.res.toHost(x)
}

// FromHost marks x written by the host: the device copy is stale.
func (b *cudaBackend) FromHost(x []float32) {
	defer b.enter()()
	b.res.fromHost(x)
}

// opt is x[:n], or nil for an absent x.
func opt(x []float32, n int) []float32 {
	if x == nil {
		return nil
	}
	return x[:n]
}

// keep returns the device buffer (owned, at least n elements) held for a
// prepared weight, reallocated when it is too small.
func (b *cudaBackend) keep(old *cuda.Buf, name string, dt cuda.DType, n int) *cuda.Buf {
	if old != nil && old.N >= n {
		return old
	}
	if old != nil {
		b.must(b.d.Sync())
		old.Free()
	}
	buf, err := b.d.Alloc(name, dt, n)
	b.must(err)
	return buf
}

// PackWeight uploads weight (N, K) into a device buffer the returned
// handle names; MatmulForwardPacked multiplies by it.
func (b *cudaBackend) PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) (handle *kernels.PackedWeight) {
	defer b.enter()()
	if pw == nil {
		pw = &kernels.PackedWeight{}
	}
	handle = pw
	pw.N, pw.K = N, K
	key := weak.Make(pw)
	old := b.fp32[key]
	w := b.keep(old, "prepared weight", cuda.F32, N*K)
	b.load(w, weight[:N*K])
	b.hold32(pw, w, old == nil)
	return pw
}

// hold32 records w as pw's device copy; with fresh, it frees w when pw is
// garbage collected.
func (b *cudaBackend) hold32(pw *kernels.PackedWeight, w *cuda.Buf, fresh bool) {
	key := weak.Make(pw)
	b.fp32[key] = w
	if fresh {
		runtime.AddCleanup(pw, func(k weak.Pointer[kernels.PackedWeight]) {
			b.drop(func() *cuda.Buf { buf := b.fp32[k]; delete(b.fp32, k); return buf })
		}, key)
	}
}

// adoptRows is how many rows of a host-packed weight adoption copies at a time.
const adoptRows = 1024

// packed32 is pw's device copy. A weight packed on the host (by package
// kernels: a sample-only model's matrices, LoadForSampling) is adopted
// the first time: its rows are read back (kernels.PackedRows, adoptRows
// at a time) and uploaded, then kept like PackWeight's.
func (b *cudaBackend) packed32(pw *kernels.PackedWeight) *cuda.Buf {
	if w := b.fp32[weak.Make(pw)]; w != nil {
		return w
	}
	b.must(b.err) // a failed PackWeight leaves a handle with no copy anywhere
	N, K := pw.N, pw.K
	w := b.keep(nil, "prepared weight", cuda.F32, N*K)
	b.adoptRows(N, K, func(dst []float32, ids []int32) { kernels.PackedRows(dst, pw, ids) },
		func(off int, x []float32) { b.must(b.d.Upload(w.View(off, len(x)), x)) })
	b.hold32(pw, w, true)
	return w
}

// adoptRows reads a host pack's N rows of K, adoptRows at a time, with
// rows (kernels.PackedRows or PackedRowsBF16) into b.tmp, and hands each
// block to put with its offset in the (N, K) matrix.
func (b *cudaBackend) adoptRows(N, K int, rows func(dst []float32, ids []int32), put func(off int, x []float32)) {
	ids := make([]int32, adoptRows)
	for n0 := 0; n0 < N; n0 += adoptRows {
		n := min(adoptRows, N-n0)
		for i := range n {
			ids[i] = int32(n0 + i)
		}
		b.tmp = slices.Grow(b.tmp[:0], n*K)[:n*K]
		rows(b.tmp, ids[:n])
		put(n0*K, b.tmp)
	}
}

// FreeWeight frees pw's device copy now (the sampler's per-Generate
// packs: the garbage collector, which sees only the small handles, could
// leave many on the GPU).
func (b *cudaBackend) FreeWeight(pw *kernels.PackedWeight) {
	if pw == nil {
		return
	}
	key := weak.Make(pw)
	b.drop(func() *cuda.Buf { buf := b.fp32[key]; delete(b.fp32, key); return buf })
}

// drop frees a collected handle's device buffer, which take removes from
// its map (a runtime cleanup, on another goroutine: under the lock).
func (b *cudaBackend) drop(take func() *cuda.Buf) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if buf := take(); buf != nil {
		_ = b.d.Sync()
		buf.Free()
	}
}

func (b *cudaBackend) MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int) {
	defer b.enter()()
	w := b.packed32(pw)
	o := b.out("out", out[:N*pw.N])
	b.must(b.d.MatmulForward(o, b.in("inp", inp[:N*pw.K]), w, b.in("bias", opt(bias, pw.N)), N, pw.K, pw.N))
	b.get(out[:N*pw.N], o)
}

// toBF16 uploads w (N, K) and rounds it into dst (BF16) on the device.
func (b *cudaBackend) toBF16(dst *cuda.Buf, w []float32) {
	b.must(b.d.ToBF16(dst, b.in("bf16 src", w), len(w)))
}

// packBF16 rounds w into pw's device copy (N, K): w is (N, K), or with
// transposed (K, N); pw (new when nil) is set before anything can fail,
// so the handle comes back even then.
func (b *cudaBackend) packBF16(pw **kernels.PackedWeightBF16, w []float32, N, K int, transposed bool) {
	if *pw == nil {
		*pw = &kernels.PackedWeightBF16{}
	}
	p := *pw
	p.N, p.K = N, K
	old := b.bf16[weak.Make(p)]
	buf := b.keep(old, "prepared bf16 weight", cuda.BF16, N*K)
	if transposed {
		b.must(b.d.ToBF16T(buf, b.in("bf16 src", w), K, N))
	} else {
		b.toBF16(buf, w)
	}
	b.hold16(p, buf, old == nil)
}

// hold16 is hold32 for a bf16 weight.
func (b *cudaBackend) hold16(pw *kernels.PackedWeightBF16, w *cuda.Buf, fresh bool) {
	key := weak.Make(pw)
	b.bf16[key] = w
	if fresh {
		runtime.AddCleanup(pw, func(k weak.Pointer[kernels.PackedWeightBF16]) {
			b.drop(func() *cuda.Buf { buf := b.bf16[k]; delete(b.bf16, k); return buf })
		}, key)
	}
}

func (b *cudaBackend) PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) (handle *kernels.PackedWeightBF16) {
	defer b.enter()()
	handle = pw
	b.packBF16(&handle, weight[:N*K], N, K, false)
	return handle
}

func (b *cudaBackend) PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) (handle *kernels.PackedWeightBF16) {
	defer b.enter()()
	handle = pw
	b.packBF16(&handle, weight[:K*N], N, K, true)
	return handle
}

// packedBF16 is pw's device copy, adopted from a host bf16 pack
// (kernels.PackedRowsBF16: the bf16 values, which ToBF16 keeps) the first
// time, as packed32.
func (b *cudaBackend) packedBF16(pw *kernels.PackedWeightBF16) *cuda.Buf {
	if w := b.bf16[weak.Make(pw)]; w != nil {
		return w
	}
	b.must(b.err)
	N, K := pw.N, pw.K
	w := b.keep(nil, "prepared bf16 weight", cuda.BF16, N*K)
	b.adoptRows(N, K, func(dst []float32, ids []int32) { kernels.PackedRowsBF16(dst, pw, ids) },
		func(off int, x []float32) { b.toBF16(w.View(off, len(x)), x) })
	b.hold16(pw, w, true)
	return w
}

func (b *cudaBackend) MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int) {
	defer b.enter()()
	o := b.out("out", out[:N*pw.N])
	b.must(b.d.MatmulForwardBF16(o, b.in("inp", inp[:N*pw.K]), b.packedBF16(pw), b.in("bias", opt(bias, pw.N)), N, pw.K, pw.N))
	b.get(out[:N*pw.N], o)
}

func (b *cudaBackend) MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	defer b.enter()()
	b.matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, nil, N, C, OC)
}

func (b *cudaBackend) MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	defer b.enter()()
	b.matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, wT, N, C, OC)
}

// matmulBackwardBF16 is kernels' matmulBackwardBF16 on the device:
// dinp (N, C) += bf16(dout) (N, OC) · bf16(weight) with the pairs over o
// (weightᵀ (C, OC) as the GEMM's w: wT's prepared buffer, or a transpose),
// dweight (OC, C) += bf16(dout)ᵀ · bf16(inp) with the pairs over b
// (doutᵀ read through strides, inpᵀ (C, N) as w), dbias += Σ_b dout.
func (b *cudaBackend) matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	if N <= 0 {
		return
	}
	dO := b.in("dout", dout[:N*OC])
	if dbias != nil {
		db := b.in("dbias", dbias[:OC])
		b.must(b.d.BiasBackward(db, dO, N, OC))
		b.get(dbias[:OC], db)
	}
	if dinp != nil {
		var w *cuda.Buf
		if wT != nil {
			w = b.packedBF16(wT)
		} else {
			w = b.stage("weightT bf16", cuda.BF16, C*OC)
			b.must(b.d.ToBF16T(w, b.in("weight", weight[:OC*C]), OC, C))
		}
		di := b.in("dinp", dinp[:N*C])
		b.must(b.d.MatmulBF16Strided(di, dO, w, nil, N, C, OC, OC, 1, true))
		b.get(dinp[:N*C], di)
	}
	if dweight != nil {
		w := b.stage("inpT bf16", cuda.BF16, C*N)
		b.must(b.d.ToBF16T(w, b.in("inp", inp[:N*C]), N, C))
		dw := b.in("dweight", dweight[:OC*C])
		b.must(b.d.MatmulBF16Strided(dw, dO, w, nil, OC, C, N, 1, OC, true))
		b.get(dweight[:OC*C], dw)
	}
}
