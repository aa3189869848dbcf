package trainer

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestResidentSetRandom drives residentSet through random kernel reads
// and writes, host reads and writes, over random views of two kept
// buffers, against a model: truth is every element's value, and after
// each operation the side that operation uses must hold it. The runs
// must stay sorted, inside the buffer and merged.
func TestResidentSetRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := &residentSet[[]float32]{mem: mirrorMem{}}
	bufs := [][]float32{make([]float32, 257), make([]float32, 1000)}
	truth := [][]float32{make([]float32, 257), make([]float32, 1000)}
	for _, b := range bufs {
		s.keep(b, "test")
	}
	next := float32(1)
	for it := range 20000 {
		k := rng.IntN(2)
		n := len(bufs[k])
		lo := rng.IntN(n)
		hi := lo + 1 + rng.IntN(n-lo)
		if rng.IntN(4) == 0 { // a short view, as a row
			hi = min(n, lo+1+rng.IntN(4))
		}
		x, tr := bufs[k][lo:hi], truth[k][lo:hi]
		switch op := rng.IntN(4); op {
		case 0: // a kernel reads x on the device
			r, off := s.in(x)
			for i := range x {
				if r.dev[off+i] != tr[i] {
					t.Fatalf("op %d: kernel read element %d: device %v, want %v", it, lo+i, r.dev[off+i], tr[i])
				}
			}
		case 1: // a kernel writes x on the device (stale host copy: poisoned)
			r, off := s.out(x)
			for i := range x {
				r.dev[off+i], tr[i] = next, next
				x[i] = -1
				next++
			}
		case 2: // the host reads x
			s.toHost(x)
			for i := range x {
				if x[i] != tr[i] {
					t.Fatalf("op %d: host read element %d: %v, want %v", it, lo+i, x[i], tr[i])
				}
			}
		case 3: // the host writes x
			for i := range x {
				x[i], tr[i] = next, next
				next++
			}
			s.fromHost(x)
		}
		for _, r := range s.regs {
			for i := range r.cuts {
				if i > 0 && (r.cuts[i] <= r.cuts[i-1] || r.st[i] == r.st[i-1]) {
					t.Fatalf("op %d: runs %v states %v not sorted and merged", it, r.cuts, r.st)
				}
			}
			if r.cuts[0] != 0 || r.cuts[len(r.cuts)-1] >= r.n {
				t.Fatalf("op %d: runs %v outside [0, %d)", it, r.cuts, r.n)
			}
		}
	}
	// Not kept: a slice of other memory, an empty view.
	if r, _ := s.in(make([]float32, 4)); r != nil {
		t.Error("a buffer never kept was found kept")
	}
	if r, _ := s.in(bufs[0][:0]); r != nil {
		t.Error("an empty view was found kept")
	}
	// Keeping a buffer again starts it over from the host; forget drops it.
	s.keep(bufs[1], "test")
	if len(s.regs) != 2 {
		t.Fatalf("%d regions after keeping a kept buffer again, want 2", len(s.regs))
	}
	s.forget(bufs[0][3:9])
	if len(s.regs) != 1 {
		t.Fatalf("%d regions after forget, want 1", len(s.regs))
	}
	runtime.KeepAlive(bufs)
}

// TestResidentSetCollected: a kept buffer the garbage collector took is
// never matched again, though new memory may take its address.
func TestResidentSetCollected(t *testing.T) {
	s := &residentSet[[]float32]{mem: mirrorMem{}}
	s.keep(make([]float32, 1<<16), "test")
	for range 4 {
		runtime.GC()
	}
	s.sweep()
	if len(s.regs) != 0 {
		t.Fatalf("%d regions left after the buffer was collected", len(s.regs))
	}
}
