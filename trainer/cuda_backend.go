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
// back to the CPU kernels. This first version keeps the model's tensors
// on the host: each call uploads its inputs (and the old value of every
// accumulated output) into per-slot staging buffers, launches the kernel
// and downloads its outputs (docs/cuda.md says what comes next: weights,
// moments and the KV cache resident on the device). The prepared weights
// of PackWeight and PackWeightBF16(T) are the exception: they are uploaded
// once per pack and stay on the device, keyed by (a weak pointer to) the
// handle returned, and freed when the handle is garbage collected (a
// released model's packs do not pile up on the GPU).
//
// The kernels mirror package kernels' bit for bit (docs/cuda.md), so a
// model on this backend gives the CPU backend's log-probs; the conformance
// tests (cuda_backend_test.go) check it on a GPU.
//
// Backend methods cannot return errors: a CUDA failure (out of memory, a
// launch error, a device-side range check) panics with the kernel's name
// and CUDA's error string, before the stage commits anything.
type cudaBackend struct {
	mu   sync.Mutex
	d    *cuda.Device
	rope map[ropeKey]*cuda.RopeTable
	fp32 map[weak.Pointer[kernels.PackedWeight]]*cuda.Buf     // PackWeight: the weight (N, K), fp32
	bf16 map[weak.Pointer[kernels.PackedWeightBF16]]*cuda.Buf // PackWeightBF16(T): the weight (N, K), bf16
	tmp  []float32                                            // host scratch for transposes
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
	return &cudaBackend{d: d, rope: map[ropeKey]*cuda.RopeTable{},
		fp32: map[weak.Pointer[kernels.PackedWeight]]*cuda.Buf{}, bf16: map[weak.Pointer[kernels.PackedWeightBF16]]*cuda.Buf{}}
}

func (b *cudaBackend) Name() string { return fmt.Sprintf("cuda: %s, device %d", b.d.Name, b.d.Ordinal) }

// must panics on a CUDA error (see cudaBackend).
func (b *cudaBackend) must(err error) {
	if err != nil {
		panic(fmt.Errorf("trainer: cuda backend: %w", err))
	}
}

// stage returns the staging buffer slot with room for n elements of dt.
func (b *cudaBackend) stage(slot string, dt cuda.DType, n int) *cuda.Buf {
	buf, err := b.d.Scratch("backend "+slot, dt, max(n, 1))
	b.must(err)
	return buf
}

// in uploads x into staging slot (nil for a nil x: an absent argument).
func (b *cudaBackend) in(slot string, x []float32) *cuda.Buf {
	if x == nil {
		return nil
	}
	buf := b.stage(slot, cuda.F32, len(x))
	b.must(b.d.Upload(buf, x))
	return buf
}

// out is a staging slot for n output floats (written by the kernel).
func (b *cudaBackend) out(slot string, n int) *cuda.Buf { return b.stage(slot, cuda.F32, n) }

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

// get downloads buf into dst (nothing for a nil dst).
func (b *cudaBackend) get(dst []float32, buf *cuda.Buf) {
	if dst != nil {
		b.must(b.d.Download(dst, buf))
	}
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
func (b *cudaBackend) PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pw == nil {
		pw = &kernels.PackedWeight{}
	}
	pw.N, pw.K = N, K
	key := weak.Make(pw)
	old := b.fp32[key]
	w := b.keep(old, "prepared weight", cuda.F32, N*K)
	b.must(b.d.Upload(w, weight[:N*K]))
	b.fp32[key] = w
	if old == nil {
		runtime.AddCleanup(pw, func(k weak.Pointer[kernels.PackedWeight]) {
			b.drop(func() *cuda.Buf { buf := b.fp32[k]; delete(b.fp32, k); return buf })
		}, key)
	}
	return pw
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
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.fp32[weak.Make(pw)]
	if w == nil {
		panic("trainer: cuda backend: MatmulForwardPacked on a weight not packed by this backend")
	}
	o := b.out("out", N*pw.N)
	b.must(b.d.MatmulForward(o, b.in("inp", inp[:N*pw.K]), w, b.in("bias", opt(bias, pw.N)), N, pw.K, pw.N))
	b.get(out[:N*pw.N], o)
}

// toBF16 uploads w (N, K) and rounds it into dst (BF16) on the device.
func (b *cudaBackend) toBF16(dst *cuda.Buf, w []float32) {
	b.must(b.d.ToBF16(dst, b.in("bf16 src", w), len(w)))
}

// transpose returns the (cols, rows) transpose of x (rows, cols) in the
// backend's host scratch (valid until the next call).
func (b *cudaBackend) transpose(x []float32, rows, cols int) []float32 {
	b.tmp = slices.Grow(b.tmp[:0], rows*cols)[:rows*cols]
	for r := range rows {
		for c := range cols {
			b.tmp[c*rows+r] = x[r*cols+c]
		}
	}
	return b.tmp
}

func (b *cudaBackend) packBF16(pw *kernels.PackedWeightBF16, w []float32, N, K int) *kernels.PackedWeightBF16 {
	if pw == nil {
		pw = &kernels.PackedWeightBF16{}
	}
	pw.N, pw.K = N, K
	key := weak.Make(pw)
	old := b.bf16[key]
	buf := b.keep(old, "prepared bf16 weight", cuda.BF16, N*K)
	b.toBF16(buf, w)
	b.bf16[key] = buf
	if old == nil {
		runtime.AddCleanup(pw, func(k weak.Pointer[kernels.PackedWeightBF16]) {
			b.drop(func() *cuda.Buf { buf := b.bf16[k]; delete(b.bf16, k); return buf })
		}, key)
	}
	return pw
}

func (b *cudaBackend) PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.packBF16(pw, weight[:N*K], N, K)
}

func (b *cudaBackend) PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) *kernels.PackedWeightBF16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.packBF16(pw, b.transpose(weight, K, N), N, K)
}

func (b *cudaBackend) packedBF16(pw *kernels.PackedWeightBF16) *cuda.Buf {
	w := b.bf16[weak.Make(pw)]
	if w == nil {
		panic("trainer: cuda backend: a bf16 weight not packed by this backend")
	}
	return w
}

func (b *cudaBackend) MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.out("out", N*pw.N)
	b.must(b.d.MatmulForwardBF16(o, b.in("inp", inp[:N*pw.K]), b.packedBF16(pw), b.in("bias", opt(bias, pw.N)), N, pw.K, pw.N))
	b.get(out[:N*pw.N], o)
}

func (b *cudaBackend) MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, nil, N, C, OC)
}

func (b *cudaBackend) MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	b.mu.Lock()
	defer b.mu.Unlock()
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
			b.toBF16(w, b.transpose(weight[:OC*C], OC, C))
		}
		di := b.in("dinp", dinp[:N*C])
		b.must(b.d.MatmulBF16Strided(di, dO, w, nil, N, C, OC, OC, 1, true))
		b.get(dinp[:N*C], di)
	}
	if dweight != nil {
		w := b.stage("inpT bf16", cuda.BF16, C*N)
		b.toBF16(w, b.transpose(inp[:N*C], N, C))
		dw := b.in("dweight", dweight[:OC*C])
		b.must(b.d.MatmulBF16Strided(dw, dO, w, nil, OC, C, N, 1, OC, true))
		b.get(dweight[:OC*C], dw)
	}
}
