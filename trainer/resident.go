package trainer

import (
	"slices"
	"unsafe"
	"weak"
)

// Residency: a device backend may keep a copy of a host buffer the model
// owns (its parameters, gradients, activation arena: Backend.Keep) and
// compute on that copy from call to call, so that a step moves only its
// batch in and its results out. residentSet is the bookkeeping, shared by
// the CUDA backend (device memory) and the mirror backend (a second Go
// copy, which the CPU tests use to check that the model keeps the rules):
// for every element of a kept buffer, which copy is current.
//
// The rules the model keeps (Backend's Keep, ToHost, FromHost):
//   - a kernel's inputs are read where they are current: the host's
//     newer elements go up first (in);
//   - a kernel's outputs are the device's: the host copy goes stale
//     (out; an accumulated output is in, then out);
//   - host code that reads a kept buffer calls ToHost first (the
//     device's newer elements come down);
//   - host code that writes one calls FromHost afterwards (the device
//     copy of those elements goes stale), after a ToHost when it writes
//     only part of what it then declares written.
//
// Elements are tracked exactly (runs of equal state), so any view of a
// buffer — a tensor, a head's rows, one row — can be an argument.

// resState says which copy of a run of elements is current.
type resState uint8

const (
	resBoth resState = iota // host and device agree
	resHost                 // the host's is newer: the device's is stale
	resDev                  // the device's is newer: the host's is stale
)

// devMem is how a residentSet moves floats: B is one device buffer
// (CUDA: *cuda.Buf; the mirror: []float32). A failure panics (the CUDA
// backend's must).
type devMem[B any] interface {
	alloc(n int, name string) B // name: what the buffer holds, for an out-of-memory error
	free(b B)
	upload(dst B, off int, src []float32)
	download(dst []float32, src B, off int)
}

// resRegion is one kept host buffer: n floats from base, its device copy,
// and the state of each run of elements: run i is [cuts[i], cuts[i+1])
// (the last ends at n) in state st[i]; neighbours differ.
type resRegion[B any] struct {
	base uintptr
	n    int
	host weak.Pointer[float32] // the buffer's first element: nil once collected
	dev  B
	cuts []int
	st   []resState
}

// residentSet is the kept buffers of one backend, sorted by address.
type residentSet[B any] struct {
	mem  devMem[B]
	regs []*resRegion[B]
}

func addr(x []float32) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(x))) }

// keep starts tracking x (the whole buffer, as allocated), its host copy
// current; a kept buffer it overlaps (one released and reused, or
// collected) is dropped first.
func (s *residentSet[B]) keep(x []float32, name string) {
	if len(x) == 0 {
		return
	}
	lo, hi := addr(x), addr(x)+uintptr(4*len(x))
	s.regs = slices.DeleteFunc(s.regs, func(r *resRegion[B]) bool {
		if r.base < hi && lo < r.base+uintptr(4*r.n) {
			s.mem.free(r.dev)
			return true
		}
		return false
	})
	r := &resRegion[B]{base: lo, n: len(x), host: weak.Make(&x[0]), dev: s.mem.alloc(len(x), name), cuts: []int{0}, st: []resState{resHost}}
	i, _ := slices.BinarySearchFunc(s.regs, lo, func(r *resRegion[B], a uintptr) int { return cmpAddr(r.base, a) })
	s.regs = slices.Insert(s.regs, i, r)
}

func cmpAddr(a, b uintptr) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// forget stops tracking the buffer x belongs to (its device copy is freed;
// the host copy is what it is: ToHost first to keep the device's values).
func (s *residentSet[B]) forget(x []float32) {
	if r, _ := s.find(x); r != nil {
		s.remove(r)
	}
}

func (s *residentSet[B]) remove(r *resRegion[B]) {
	s.regs = slices.DeleteFunc(s.regs, func(q *resRegion[B]) bool { return q == r })
	s.mem.free(r.dev)
}

// sweep drops the regions whose host buffer was garbage collected.
func (s *residentSet[B]) sweep() {
	s.regs = slices.DeleteFunc(s.regs, func(r *resRegion[B]) bool {
		if r.host.Value() == nil {
			s.mem.free(r.dev)
			return true
		}
		return false
	})
}

// find returns the kept region that holds x and x's offset in it, or nil
// when x is empty or not (wholly) in a kept buffer.
func (s *residentSet[B]) find(x []float32) (*resRegion[B], int) {
	if len(x) == 0 || len(s.regs) == 0 {
		return nil, 0
	}
	a := addr(x)
	i, found := slices.BinarySearchFunc(s.regs, a, func(r *resRegion[B], a uintptr) int { return cmpAddr(r.base, a) })
	if !found {
		i--
	}
	if i < 0 {
		return nil, 0
	}
	r := s.regs[i]
	off := int((a - r.base) / 4)
	if off >= r.n {
		return nil, 0
	}
	if r.host.Value() == nil { // collected: this memory is someone else's now
		s.remove(r)
		return nil, 0
	}
	if off+len(x) > r.n {
		panic("trainer: a slice runs past the end of a kept buffer")
	}
	return r, off
}

// in makes the device copy of x current (uploading the host's newer
// runs) and returns x's region and offset (nil: x is not kept).
func (s *residentSet[B]) in(x []float32) (*resRegion[B], int) {
	r, off := s.find(x)
	if r == nil {
		return nil, 0
	}
	r.each(off, off+len(x), resHost, func(a, b int) { s.mem.upload(r.dev, a, x[a-off:b-off]) })
	r.set(off, off+len(x), resBoth, resHost)
	return r, off
}

// out marks x written by the device (every element: a kernel's output)
// and returns its region and offset (nil: x is not kept).
func (s *residentSet[B]) out(x []float32) (*resRegion[B], int) {
	r, off := s.find(x)
	if r != nil {
		r.setAll(off, off+len(x), resDev)
	}
	return r, off
}

// toHost makes the host copy of x current (downloading the device's
// newer runs).
func (s *residentSet[B]) toHost(x []float32) {
	r, off := s.find(x)
	if r == nil {
		return
	}
	r.each(off, off+len(x), resDev, func(a, b int) { s.mem.download(x[a-off:b-off], r.dev, a) })
	r.set(off, off+len(x), resBoth, resDev)
}

// fromHost marks x written by the host.
func (s *residentSet[B]) fromHost(x []float32) {
	if r, off := s.find(x); r != nil {
		r.setAll(off, off+len(x), resHost)
	}
}

// each calls f(a, b) for every maximal run [a, b) within [lo, hi) in state st.
func (r *resRegion[B]) each(lo, hi int, st resState, f func(a, b int)) {
	i, _ := slices.BinarySearch(r.cuts, lo+1)
	for i--; i < len(r.cuts) && r.cuts[i] < hi; i++ {
		if r.st[i] != st {
			continue
		}
		end := r.n
		if i+1 < len(r.cuts) {
			end = r.cuts[i+1]
		}
		f(max(lo, r.cuts[i]), min(hi, end))
	}
}

// set gives the elements of [lo, hi) that are in state from state to.
func (r *resRegion[B]) set(lo, hi int, to, from resState) {
	var runs [][2]int
	r.each(lo, hi, from, func(a, b int) { runs = append(runs, [2]int{a, b}) })
	for _, ab := range runs {
		r.setAll(ab[0], ab[1], to)
	}
}

// setAll puts [lo, hi) in state st.
func (r *resRegion[B]) setAll(lo, hi int, st resState) {
	if lo >= hi {
		return
	}
	r.split(hi)
	r.split(lo)
	i, _ := slices.BinarySearch(r.cuts, lo)
	j, _ := slices.BinarySearch(r.cuts, hi) // len(cuts) when hi = n
	r.cuts = slices.Replace(r.cuts, i, j, lo)
	r.st = slices.Replace(r.st, i, j, st)
	// merge with the neighbours
	if i+1 < len(r.cuts) && r.st[i+1] == st {
		r.cuts, r.st = slices.Delete(r.cuts, i+1, i+2), slices.Delete(r.st, i+1, i+2)
	}
	if i > 0 && r.st[i-1] == st {
		r.cuts, r.st = slices.Delete(r.cuts, i, i+1), slices.Delete(r.st, i, i+1)
	}
}

// split makes a run start at p (0 < p < n).
func (r *resRegion[B]) split(p int) {
	if p <= 0 || p >= r.n {
		return
	}
	i, found := slices.BinarySearch(r.cuts, p)
	if found {
		return
	}
	r.cuts = slices.Insert(r.cuts, i, p)
	r.st = slices.Insert(r.st, i, r.st[i-1])
}

// keptGrow returns buf[:n], or a new buffer of n floats when buf is too
// small: be forgets the old one and keeps the new (named name).
func keptGrow(be Backend, buf []float32, n int, name string) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	be.Forget(buf)
	buf = make([]float32, n)
	be.Keep(buf, name)
	return buf
}
