package trainer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// hostMem is a kvDevice over host memory: the CUDA backend's device calls
// replaced by copies, with what a GPU would not report checked instead
// (a freed buffer touched, a double free) and the calls counted.
type hostMem struct {
	t                              *testing.T
	allocs, frees, scatters, copys int
	scattered                      int // rows
}

// hostBuf is a buffer (root == itself) or a view of one.
type hostBuf struct {
	data  []float32
	root  *hostBuf
	freed bool
}

func (h *hostMem) kvAlloc(n int) *hostBuf {
	h.allocs++
	b := &hostBuf{data: make([]float32, n)}
	for i := range b.data {
		b.data[i] = -999 // garbage, as cudaMalloc's
	}
	b.root = b
	return b
}

func (h *hostMem) kvView(b *hostBuf, off, n int) *hostBuf {
	return &hostBuf{data: b.data[off : off+n : off+n], root: b.root}
}

func (h *hostMem) live(b *hostBuf, what string) {
	h.t.Helper()
	if b == nil || b.root.freed {
		h.t.Fatalf("%s: a freed or missing buffer", what)
	}
}

func (h *hostMem) kvCopy(dst, src *hostBuf, n int) {
	h.live(dst, "copy into")
	h.live(src, "copy from")
	h.copys++
	copy(dst.data[:n], src.data[:n])
}

func (h *hostMem) kvScatter(rows []float32, copies []kvRowCopy[*hostBuf]) {
	h.scatters++
	h.scattered += len(copies)
	for _, c := range copies {
		h.live(c.dst, "scatter into")
		copy(c.dst.data[c.off:c.off+c.n], rows[c.src:c.src+c.n])
	}
}

func (h *hostMem) kvFree(bufs []*hostBuf) {
	for _, b := range bufs {
		if b.root != b || b.freed {
			h.t.Fatalf("kvFree of a view or of a freed buffer")
		}
		b.freed = true
		h.frees++
	}
}

// kvRef is what a cache must hold: its positions' keys and values.
type kvRef struct{ k, v [][]float32 }

// checkStore reads st as the decode kernel does (keys at buf + u·ld + kh·HS,
// values at vals + u·ld + kh·HS, ld = 2·kvd) and compares with ref.
func checkStore(t *testing.T, what string, st *kvStore[*hostBuf], ref kvRef) {
	t.Helper()
	if st.n != len(ref.k) {
		t.Fatalf("%s: %d positions, want %d", what, st.n, len(ref.k))
	}
	ld := 2 * st.kvd
	for u := range st.n {
		if !slices.Equal(st.buf.data[u*ld:u*ld+st.kvd], ref.k[u]) || !slices.Equal(st.vals.data[u*ld:u*ld+st.kvd], ref.v[u]) {
			t.Fatalf("%s: position %d holds %v / %v, want %v / %v", what, u,
				st.buf.data[u*ld:u*ld+st.kvd], st.vals.data[u*ld:u*ld+st.kvd], ref.k[u], ref.v[u])
		}
	}
}

// TestKVArena: the device-resident KV cache's bookkeeping (kvarena.go) on
// host memory. Appends are staged and land with one scatter per flush,
// growth keeps the content (capacities double from the hint's power of
// two), a copy of a prefix flushes first, a released buffer is reused by
// the next cache of its size instead of a new allocation, and the release
// of the last cache frees every buffer once.
func TestKVArena(t *testing.T) {
	h := &hostMem{t: t}
	a := newKVArena[*hostBuf](h)
	const kvd = 6
	rng := rand.New(rand.NewPCG(1, 2))
	row := func() []float32 {
		x := make([]float32, kvd)
		for i := range x {
			x[i] = float32(rng.IntN(1000))
		}
		return x
	}
	A, B := a.newStore(kvd, 2), a.newStore(kvd, 5)
	var refA, refB kvRef
	add := func(st *kvStore[*hostBuf], ref *kvRef) {
		k, v := row(), row()
		a.append(st, k, v)
		ref.k, ref.v = append(ref.k, k), append(ref.v, v)
	}
	// Prefill-like: several rows of one cache staged before one flush,
	// past the initial capacity (2 → 4 → 8 → 16 for A).
	for range 11 {
		add(A, &refA)
	}
	add(B, &refB)
	if h.allocs != 0 || h.scatters != 0 {
		t.Fatalf("append touched the device: %d allocations, %d scatters", h.allocs, h.scatters)
	}
	a.flush()
	if h.scatters != 1 || h.scattered != 12 {
		t.Fatalf("flush: %d scatters of %d rows, want 1 of 12", h.scatters, h.scattered)
	}
	checkStore(t, "A", A, refA)
	checkStore(t, "B", B, refB)
	if A.cap != 16 || B.cap != 8 {
		t.Errorf("capacities %d and %d, want 16 (11 positions) and 8 (hint 5)", A.cap, B.cap)
	}
	// Decode-like steps: one row per cache per flush; A grows to 32 with
	// its flushed content copied.
	for step := range 8 {
		add(A, &refA)
		add(B, &refB)
		a.flush()
		checkStore(t, "A", A, refA)
		checkStore(t, "B", B, refB)
		if h.scatters != 2+step {
			t.Fatalf("step %d: %d scatters", step, h.scatters)
		}
	}
	if A.cap != 32 || B.cap != 16 {
		t.Errorf("capacities %d and %d after growth, want 32 and 16", A.cap, B.cap)
	}
	// A prefix copy of a cache with staged rows flushes them first.
	add(A, &refA)
	C := a.newStore(kvd, 3)
	a.copyPrefix(C, A, 14)
	checkStore(t, "A", A, refA)
	checkStore(t, "C = A[:14]", C, kvRef{refA.k[:14], refA.v[:14]})
	if C.cap != 16 {
		t.Errorf("copy of 14 positions: capacity %d, want 16", C.cap)
	}
	// Restore-like: a started cache takes a shorter prefix, then grows on.
	refC := kvRef{slices.Clone(refA.k[:5]), slices.Clone(refA.v[:5])}
	a.copyPrefix(C, A, 5)
	add(C, &refC)
	a.flush()
	checkStore(t, "C", C, refC)
	// Release: the buffer goes to the free list; a new cache of that size
	// reuses it.
	allocs, pooled := h.allocs, a.pooled()
	add(B, &refB) // staged: release flushes it before the buffer can be reused
	a.release(B)
	a.release(B) // twice: nothing
	if a.live != 2 || a.pooled() != pooled+1 {
		t.Fatalf("after releasing B: %d live, %d pooled", a.live, a.pooled())
	}
	D := a.newStore(kvd, 9) // B's capacity class (16)
	var refD kvRef
	add(D, &refD)
	a.flush()
	checkStore(t, "D", D, refD)
	if h.allocs != allocs {
		t.Errorf("a cache of a released one's size allocated (%d allocations, was %d)", h.allocs, allocs)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "released") {
				t.Errorf("append to a released cache: %v, want a panic", r)
			}
		}()
		a.append(B, row(), row())
	}()
	// The last release frees every buffer, once.
	for _, st := range []*kvStore[*hostBuf]{A, C, D} {
		a.release(st)
	}
	if a.live != 0 || a.pooled() != 0 || h.frees != h.allocs {
		t.Errorf("after the last release: %d live, %d pooled, %d of %d buffers freed", a.live, a.pooled(), h.frees, h.allocs)
	}
}

// TestKVArenaRandom: random appends, flushes, prefix copies and releases
// over several caches against a host reference. Appends alternate between
// host rows (append) and rows already in device memory (appendDev, as
// AppendKV's kept k and v); a flush lands both.
func TestKVArenaRandom(t *testing.T) {
	h := &hostMem{t: t}
	a := newKVArena[*hostBuf](h)
	rng := rand.New(rand.NewPCG(7, 8))
	const kvd = 4
	var sts []*kvStore[*hostBuf]
	var refs []kvRef
	x := float32(0)
	for op := range 3000 {
		switch r := rng.IntN(20); {
		case r < 2 || len(sts) == 0:
			sts = append(sts, a.newStore(kvd, 1+rng.IntN(9)))
			refs = append(refs, kvRef{})
		case r < 14:
			i := rng.IntN(len(sts))
			k, v := make([]float32, kvd), make([]float32, kvd)
			for j := range kvd {
				x++
				k[j], v[j] = x, -x
			}
			if r%2 == 0 { // from device memory (AppendKV's kept k and v)
				src := &hostBuf{data: slices.Concat(v, k)}
				src.root = src
				a.appendDev(sts[i], src, kvd, src, 0)
			} else {
				a.append(sts[i], k, v)
			}
			refs[i].k, refs[i].v = append(refs[i].k, k), append(refs[i].v, v)
		case r < 16:
			a.flush()
		case r < 18:
			i, j := rng.IntN(len(sts)), rng.IntN(len(sts))
			n := rng.IntN(len(refs[j].k) + 1)
			a.copyPrefix(sts[i], sts[j], n)
			refs[i] = kvRef{slices.Clone(refs[j].k[:n]), slices.Clone(refs[j].v[:n])}
		default:
			i := rng.IntN(len(sts))
			a.release(sts[i])
			sts, refs = slices.Delete(sts, i, i+1), slices.Delete(refs, i, i+1)
		}
		if op%50 == 0 {
			a.flush()
			for i := range sts {
				checkStore(t, "cache", sts[i], refs[i])
			}
		}
	}
	for _, st := range sts {
		a.release(st)
	}
	if a.live != 0 || a.pooled() != 0 || h.frees != h.allocs {
		t.Errorf("after releasing all: %d live, %d pooled, %d of %d buffers freed", a.live, a.pooled(), h.frees, h.allocs)
	}
	t.Logf("%d allocations, %d scatters of %d rows, %d device copies", h.allocs, h.scatters, h.scattered, h.copys)
}

func (h *hostMem) kvScatterDev(copies []kvDevCopy[*hostBuf]) {
	h.scatters++
	h.scattered += len(copies)
	for _, c := range copies {
		h.live(c.dst, "scatter into")
		h.live(c.src, "scatter from")
		copy(c.dst.data[c.off:c.off+c.n], c.src.data[c.srcOff:c.srcOff+c.n])
	}
}
