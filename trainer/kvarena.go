package trainer

import (
	"fmt"
	"math/bits"
)

// kvArena is the bookkeeping of a device-resident KVCache (the CUDA
// backend's, cuda_backend_decode.go), apart from the device so that a CPU
// test can run it (kvarena_test.go). Memory B is the device's buffer type.
//
// Layout. A cache is one buffer of cap positions, each position its key
// then its value (2·NKV·HS floats: (cap, 2, NKV, HS)), so a prefix is one
// contiguous range (CopyPrefix and growth are one device-to-device copy
// each) and the decode kernel reads keys at u·2·kvd and values at kvd +
// u·2·kvd, in place.
//
// Appends are staged. A decode pass appends each of its R rows' key and
// value to that row's cache at every layer, then attends; one cudaMemcpy
// per append would be R·L·… tiny copies per step (256 sequences × 24
// layers = 6144 per token at the 0.5B shape, each ~5–10 µs of driver
// latency: 30–60 ms per step, more than the step's compute), so append
// only copies the row into a host staging buffer and notes (cache,
// position); flush, which AttentionDecode calls before it reads, uploads
// the staged rows in one copy and scatters them into their caches with
// one kernel (Device.ScatterRows): two small uploads and a launch per
// layer per step. Destinations are resolved at flush time, after any
// growth, so a cache that grows between an append and the flush takes its
// row in the new buffer. CopyPrefix and release flush first (a staged row
// must land before its cache is copied or its buffer reused). A row whose
// key and value are in device memory already (the decoder's kept k and v:
// Backend.AppendKV) is staged by reference instead (appendDev) and lands
// by a device-to-device scatter, without the upload.
//
// Memory. Capacities are powers of two positions (growth doubles), and
// buffers of released caches go to a free list by size, so that a batch
// whose finished sequences are replaced by new ones (MaxBatch) reuses
// them instead of calling cudaMalloc/cudaFree (which synchronises) per
// sequence and layer. When the last live cache is released (the end of a
// Generate: the sampler releases every cache it made) the free list is
// freed, so nothing stays on the GPU between rollout chunks or into the
// train stage. Rounding up to a power of two costs up to 2× a cache's
// exact need.
//
// Not safe for concurrent use: the backend calls it under its lock.
type kvArena[B any] struct {
	dev  kvDevice[B]
	free map[int][]B // released buffers by length (floats)
	live int         // stores made and not yet released

	rows     []float32      // staged positions, each its key then its value
	staged   []kvStaged[B]  // where each goes
	copies   []kvRowCopy[B] // flush's scratch
	devRows  []kvDevRow[B]  // staged positions whose key and value are on the device already
	devCopys []kvDevCopy[B] // flush's scratch
	bufs     []B            // freeAll's scratch
}

// kvDevRow is a position staged from device memory (appendDev): its key
// at kOff of k and its value at vOff of v.
type kvDevRow[B any] struct {
	st         *kvStore[B]
	pos        int
	k, v       B
	kOff, vOff int
}

// kvDevCopy is one device-to-device row copy for kvDevice.kvScatterDev:
// n floats of src from srcOff into dst at off.
type kvDevCopy[B any] struct {
	dst, src       B
	off, srcOff, n int
}

// kvDevice is the device memory a kvArena manages. Each method either
// succeeds or panics (the CUDA backend's must: a cudaFault that the
// backend method's enter turns into its sticky error).
type kvDevice[B any] interface {
	// kvAlloc allocates n floats.
	kvAlloc(n int) B
	// kvView is elements [off, off+n) of b, sharing its memory.
	kvView(b B, off, n int) B
	// kvCopy copies the first n floats of src into dst (in queue order).
	kvCopy(dst, src B, n int)
	// kvScatter uploads rows and copies each row range to its destination.
	kvScatter(rows []float32, copies []kvRowCopy[B])
	// kvScatterDev copies each range from device memory to its destination.
	kvScatterDev(copies []kvDevCopy[B])
	// kvFree frees bufs (after the queued work that uses them).
	kvFree(bufs []B)
}

// kvRowCopy is one staged row for kvDevice.kvScatter: n floats of the
// staged rows at src into dst at off.
type kvRowCopy[B any] struct {
	dst         B
	off, src, n int
}

// kvStore is one cache's state (a KVCache holds it).
type kvStore[B any] struct {
	kvd      int // NKV·HS
	n        int // positions held, staged ones included
	cap      int // positions buf has room for (0: no buffer yet)
	hint     int // the capacity asked for at creation
	buf      B   // (cap, 2, NKV, HS)
	vals     B   // buf from element kvd: the values' view for the decode
	released bool
}

type kvStaged[B any] struct {
	st       *kvStore[B]
	pos, off int
}

func newKVArena[B any](dev kvDevice[B]) *kvArena[B] {
	return &kvArena[B]{dev: dev, free: map[int][]B{}}
}

// kvCapacity is the power of two ≥ n (≥ 1) positions a buffer gets.
func kvCapacity(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// newStore is an empty cache of NKV·HS = kvd floats per key, room for
// capacity positions asked (allocated at its first flush or copy).
func (a *kvArena[B]) newStore(kvd, capacity int) *kvStore[B] {
	a.live++
	return &kvStore[B]{kvd: kvd, hint: max(capacity, 1)}
}

// append stages the next position's key and value (kvd floats each).
func (a *kvArena[B]) append(st *kvStore[B], k, v []float32) {
	if st.released {
		panic("trainer: kv cache: append to a released cache")
	}
	a.staged = append(a.staged, kvStaged[B]{st: st, pos: st.n, off: len(a.rows)})
	a.rows = append(append(a.rows, k[:st.kvd]...), v[:st.kvd]...)
	st.n++
}

// appendDev stages the next position's key and value from device memory:
// kvd floats of k at kOff and of v at vOff (a decode pass's kept k and v,
// which then never come to the host).
func (a *kvArena[B]) appendDev(st *kvStore[B], k B, kOff int, v B, vOff int) {
	if st.released {
		panic("trainer: kv cache: append to a released cache")
	}
	a.devRows = append(a.devRows, kvDevRow[B]{st: st, pos: st.n, k: k, v: v, kOff: kOff, vOff: vOff})
	st.n++
}

// flush writes every staged row into its cache: growth first, then one
// scatter of the host's rows and one of the device's.
func (a *kvArena[B]) flush() {
	if len(a.staged) == 0 && len(a.devRows) == 0 {
		return
	}
	for _, s := range a.staged {
		a.ensure(s.st, s.pos+1, true)
	}
	for _, s := range a.devRows {
		a.ensure(s.st, s.pos+1, true)
	}
	if len(a.staged) > 0 {
		a.copies = a.copies[:0]
		for _, s := range a.staged {
			w := 2 * s.st.kvd
			a.copies = append(a.copies, kvRowCopy[B]{dst: s.st.buf, off: s.pos * w, src: s.off, n: w})
		}
		a.dev.kvScatter(a.rows, a.copies)
	}
	if len(a.devRows) > 0 {
		a.devCopys = a.devCopys[:0]
		for _, s := range a.devRows {
			kvd := s.st.kvd
			a.devCopys = append(a.devCopys,
				kvDevCopy[B]{dst: s.st.buf, src: s.k, off: s.pos * 2 * kvd, srcOff: s.kOff, n: kvd},
				kvDevCopy[B]{dst: s.st.buf, src: s.v, off: s.pos*2*kvd + kvd, srcOff: s.vOff, n: kvd})
		}
		a.dev.kvScatterDev(a.devCopys)
		clear(a.devCopys) // hold no buffer
	}
	a.discard() // written
}

// discard drops the staged rows without writing them (a failed device:
// nothing will read them, and a flush could fail again instead of
// letting release free the memory).
func (a *kvArena[B]) discard() {
	clear(a.staged)
	clear(a.devRows)
	a.staged, a.rows, a.devRows = a.staged[:0], a.rows[:0], a.devRows[:0]
}

// ensure gives st room for need positions: a buffer of the next power of
// two (at least its hint, at least double), with the old content copied
// when keep.
func (a *kvArena[B]) ensure(st *kvStore[B], need int, keep bool) {
	if st.cap >= need {
		return
	}
	c := kvCapacity(max(need, st.hint, 2*st.cap))
	w := 2 * st.kvd
	nb := a.get(c * w)
	if keep && st.cap > 0 && st.n > 0 {
		a.dev.kvCopy(nb, st.buf, min(st.n, st.cap)*w)
	}
	if st.cap > 0 {
		a.put(st.buf, st.cap*w)
	}
	st.buf, st.vals, st.cap = nb, a.dev.kvView(nb, st.kvd, c*w-st.kvd), c
}

// copyPrefix makes dst hold the first n positions of src.
func (a *kvArena[B]) copyPrefix(dst, src *kvStore[B], n int) {
	if dst.released || src.released || dst.kvd != src.kvd || n < 0 || n > src.n {
		panic(fmt.Sprintf("trainer: kv cache copy: %d positions of a %d-position cache (%d floats a key into %d; released %v, %v)",
			n, src.n, src.kvd, dst.kvd, src.released, dst.released))
	}
	a.flush()
	if dst != src && n > 0 {
		a.ensure(dst, n, false)
		a.dev.kvCopy(dst.buf, src.buf, n*2*dst.kvd)
	}
	dst.n = n
}

// release frees st's buffer (to the free list; every buffer, when st was
// the last live cache). Releasing twice does nothing.
func (a *kvArena[B]) release(st *kvStore[B]) {
	if st.released {
		return
	}
	a.flush()
	if st.cap > 0 {
		a.put(st.buf, st.cap*2*st.kvd)
	}
	var zero B
	st.buf, st.vals, st.cap, st.released = zero, zero, 0, true
	a.live--
	if a.live == 0 {
		a.freeAll()
	}
}

func (a *kvArena[B]) get(n int) B {
	if l := a.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		var zero B
		l[len(l)-1] = zero
		a.free[n] = l[:len(l)-1]
		return b
	}
	return a.dev.kvAlloc(n)
}

func (a *kvArena[B]) put(b B, n int) { a.free[n] = append(a.free[n], b) }

// freeAll frees the free list.
func (a *kvArena[B]) freeAll() {
	a.bufs = a.bufs[:0]
	for _, l := range a.free {
		a.bufs = append(a.bufs, l...)
	}
	clear(a.free)
	if len(a.bufs) > 0 {
		a.dev.kvFree(a.bufs)
	}
	clear(a.bufs)
	a.bufs = a.bufs[:0]
}

// pooled is the number of buffers on the free list (tests).
func (a *kvArena[B]) pooled() int {
	n := 0
	for _, l := range a.free {
		n += len(l)
	}
	return n
}
