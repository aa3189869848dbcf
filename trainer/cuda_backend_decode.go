//go:build cuda && cgo

package trainer

import (
	"fmt"
	"math"
	"runtime"
	"weak"

	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/kernels/cuda"
)

// The CUDA backend's sampler decode (KV cache, attention decode, the pick)
// and optimizer. The KV caches live on the GPU (devKV below): a decode
// pass uploads only its rows' new keys and values, once per layer, and the
// attention reads every cache in place. The AdamW moments stay on the GPU
// from step to step (devMoments), and so do the model's kept buffers
// (docs/cuda.md, "Device residency").

// devKV is the CUDA backend's KVCache: one sequence's keys and values at
// one layer in device memory, (cap, 2, NKV, HS) — each position its key
// (after RoPE) then its value — managed by the backend's kvArena
// (kvarena.go: appends staged on the host and scattered into the caches
// by one upload and one kernel per flush, which AttentionDecode does
// before it reads; capacities doubling by device-to-device copies;
// released buffers reused, and freed when the last cache goes). Release
// frees it now; a cache that is dropped without it is released when the
// garbage collector finds it (runtime.AddCleanup), as PackWeight's copies.
type devKV struct {
	b       *cudaBackend
	st      *kvStore[*cuda.Buf]
	nkv, hs int
}

func (c *devKV) Len() int {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	return c.st.n
}

// Append stages the position on the host (no device call).
func (c *devKV) Append(k, v []float32) {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.kv.append(c.st, k, v)
}

// CopyPrefix is one device-to-device copy (after the staged rows land).
func (c *devKV) CopyPrefix(src KVCache, n int) {
	s := src.(*devKV)
	if s.b != c.b {
		panic("trainer: kv cache copy between two CUDA backends")
	}
	defer c.b.enter()()
	c.b.kv.copyPrefix(c.st, s.st, n)
}

func (c *devKV) Release() { c.b.releaseKV(c.st) }

// releaseKV releases a cache's device memory (Release, or the cleanup of
// a collected cache, on another goroutine: under the lock). On a failed
// backend the staged rows are dropped instead of flushed first, so that
// the memory is still freed.
func (b *cudaBackend) releaseKV(st *kvStore[*cuda.Buf]) {
	defer b.enter()()
	if b.err != nil {
		b.kv.discard()
	}
	b.kv.release(st)
}

// NewKVCache makes an empty device cache; its memory comes at the first
// flush or copy into it.
func (b *cudaBackend) NewKVCache(NKV, HS, capacity int) KVCache {
	b.mu.Lock()
	st := b.kv.newStore(NKV*HS, capacity)
	b.mu.Unlock()
	c := &devKV{b: b, st: st, nkv: NKV, hs: HS}
	runtime.AddCleanup(c, b.releaseKV, st)
	return c
}

// The kvArena's device (kvDevice): each call succeeds or ends the backend
// method that made it with a cudaFault (must).

func (b *cudaBackend) kvAlloc(n int) *cuda.Buf {
	buf, err := b.d.Alloc("kv cache", cuda.F32, n)
	b.must(err)
	return buf
}

func (b *cudaBackend) kvView(buf *cuda.Buf, off, n int) *cuda.Buf { return buf.View(off, n) }

func (b *cudaBackend) kvCopy(dst, src *cuda.Buf, n int) { b.must(b.d.Copy(dst, src, n)) }

func (b *cudaBackend) kvScatter(rows []float32, copies []kvRowCopy[*cuda.Buf]) {
	src := b.in("kv rows", rows)
	b.kvRows = b.kvRows[:0]
	for _, c := range copies {
		b.kvRows = append(b.kvRows, cuda.RowCopy{Dst: c.dst, DstOff: c.off, SrcOff: c.src, N: c.n})
	}
	b.must(b.d.ScatterRows(src, b.kvRows))
	clear(b.kvRows) // hold no buffer
}

func (b *cudaBackend) kvFree(bufs []*cuda.Buf) {
	b.must(b.d.Sync())
	for _, buf := range bufs {
		buf.Free()
	}
}

// AppendKV stages each row's key and value from the device copies of k
// and v when they are kept (the decoder's arena: nothing comes to the
// host), else from the host, and lands them at once (one scatter per
// source: k and v are rewritten by the next layer).
func (b *cudaBackend) AppendKV(caches []KVCache, k, v []float32, kvd int) {
	R := len(caches)
	if R == 0 {
		return
	}
	defer b.enter()()
	k, v = k[:R*kvd], v[:R*kvd]
	rk, ko := b.res.in(k)
	rv, vo := b.res.in(v)
	for i, kc := range caches {
		st := kc.(*devKV).st
		if rk != nil && rv != nil {
			b.kv.appendDev(st, rk.dev, ko+i*kvd, rv.dev, vo+i*kvd)
		} else {
			b.res.toHost(k[i*kvd : (i+1)*kvd])
			b.res.toHost(v[i*kvd : (i+1)*kvd])
			b.kv.append(st, k[i*kvd:(i+1)*kvd], v[i*kvd:(i+1)*kvd])
		}
	}
	b.kv.flush()
}

// kvScatterDev copies the rows device to device, one ScatterRows per
// source buffer.
func (b *cudaBackend) kvScatterDev(copies []kvDevCopy[*cuda.Buf]) {
	for len(copies) > 0 {
		src := copies[0].src
		b.kvRows = b.kvRows[:0]
		rest := copies[:0]
		for _, c := range copies {
			if c.src != src {
				rest = append(rest, c)
				continue
			}
			b.kvRows = append(b.kvRows, cuda.RowCopy{Dst: c.dst, DstOff: c.off, SrcOff: c.srcOff, N: c.n})
		}
		b.must(b.d.ScatterRows(src, b.kvRows))
		clear(b.kvRows)
		copies = rest
	}
}

// AttentionDecode lands the staged keys and values (one upload, one
// scatter), then runs Device.AttentionDecodeRows over the rows' caches
// where they are (kernels' AttentionDecodeBI per row: the same bits):
// per call only q goes up (with a table of 3·R addresses and lengths) and
// out comes back.
func (b *cudaBackend) AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int) {
	R := len(caches)
	if R == 0 {
		return
	}
	defer b.enter()()
	b.kv.flush()
	c0 := caches[0].(*devKV)
	NKV, HS := c0.nkv, c0.hs
	kvd, qd := NKV*HS, NH*HS
	b.kvK, b.kvV = b.kvK[:0], b.kvV[:0]
	for i, kc := range caches {
		c := kc.(*devKV)
		if c.nkv != NKV || c.hs != HS || c.st.released || int(lens[i]) > c.st.n || c.st.cap == 0 {
			panic(fmt.Sprintf("trainer: attention decode: row %d: %d keys of a %d-position cache (%dx%d, want %dx%d; released %v)",
				i, lens[i], c.st.n, c.nkv, c.hs, NKV, HS, c.st.released))
		}
		b.kvK, b.kvV = append(b.kvK, c.st.buf), append(b.kvV, c.st.vals)
	}
	o := b.out("out", out[:R*qd])
	err := b.d.AttentionDecodeRows(o, b.in("q", q[:R*qd]), b.kvK, b.kvV, lens[:R], 2*kvd, NH, NKV, HS)
	clear(b.kvK) // hold no buffer
	clear(b.kvV)
	b.must(err)
	b.get(out[:R*qd], o)
}

// Sample is Device.Sample: pickRow's token and log-probability for the
// same draws u.
func (b *cudaBackend) Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64) {
	if N <= 0 {
		return
	}
	defer b.enter()()
	t, lp := b.stage("sample tok", cuda.I32, N), b.out("sample logp", logp[:N])
	b.must(b.d.Sample(t, lp, b.in("logits", logits[:(N-1)*ld+V]), ld, N, V, u, cuda.SampleParams{Temp: temp, TopK: topK, TopP: topP}))
	b.must(b.d.DownloadInt32(tok[:N], t))
	b.get(logp[:N], lp)
}

// AdamWStep uploads one tensor's parameters and gradients, runs
// Device.AdamWStep on o's moments [off, off+n) kept on the device (see
// moments), and downloads the parameters (and the zeroed gradients). The
// moments stay on the GPU: o.SyncMoments downloads them for a checkpoint.
func (b *cudaBackend) AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	n := len(params)
	if n == 0 {
		return
	}
	defer b.enter()()
	dm := b.moments(o)
	p, g := b.in("adamw params", params), b.in("adamw grads", grads[:n])
	b.must(b.d.AdamWStep(p, dm.m.View(off, n), dm.v.View(off, n), g, n, gradScale, cfg, t, zeroGrads))
	o.keptBy(b)
	b.get(params, p)
	if zeroGrads {
		b.get(grads[:n], g)
	}
}

// devMoments is the device copy of one optimizer's moments (M and V, all
// its tensors one after another as on the host).
type devMoments struct{ m, v *cuda.Buf }

// moments returns o's moments on the device, uploading them from o.M and
// o.V the first time (o's moments are then current on the host: new,
// loaded, or fetched from another backend by moveTo). They are freed by
// DropMoments or when o is garbage collected.
func (b *cudaBackend) moments(o *AdamW) *devMoments {
	key := weak.Make(o)
	if dm := b.moms[key]; dm != nil {
		return dm
	}
	dm := &devMoments{}
	var err error
	dm.m, err = b.d.Alloc("adamw m", cuda.F32, len(o.M))
	b.must(err)
	if dm.v, err = b.d.Alloc("adamw v", cuda.F32, len(o.V)); err != nil {
		dm.m.Free()
		b.must(err)
	}
	b.moms[key] = dm
	runtime.AddCleanup(o, b.dropMoments, key)
	b.must(b.d.Upload(dm.m, o.M))
	b.must(b.d.Upload(dm.v, o.V))
	return dm
}

// dropMoments frees k's device moments, if b still holds them.
func (b *cudaBackend) dropMoments(k weak.Pointer[AdamW]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dm := b.moms[k]; dm != nil {
		delete(b.moms, k)
		_ = b.d.Sync()
		dm.m.Free()
		dm.v.Free()
	}
}

// FetchMoments downloads o's device moments into o.M and o.V.
func (b *cudaBackend) FetchMoments(o *AdamW) {
	defer b.enter()()
	dm := b.moms[weak.Make(o)]
	if dm == nil {
		b.must(fmt.Errorf("optimizer moments: no device copy to download"))
	}
	b.must(b.d.Download(o.M, dm.m))
	b.must(b.d.Download(o.V, dm.v))
}

// DropMoments frees o's device moments now.
func (b *cudaBackend) DropMoments(o *AdamW) { b.dropMoments(weak.Make(o)) }

// GradNorm is Device.GradNorm (kernels.GradNorm's chunks and order); NaN
// when the device fails (Err says why).
func (b *cudaBackend) GradNorm(g []float32) (norm float64) {
	if len(g) == 0 {
		return 0
	}
	defer b.enter()()
	norm = math.NaN()
	nv, err := b.d.GradNorm(b.in("grad norm", g), len(g))
	b.must(err)
	return nv
}
