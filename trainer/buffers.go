package trainer

import "sync"

// The process keeps the large float32 buffers of finished stages (a
// model's parameters, gradients and activations, AdamW's moments) and hands
// them to the next stage that asks for the same size, so a run of many
// steps in one process allocates them once: the first touch of fresh
// memory (page faults) is paid once, not at every step. At most
// poolKeep buffers are kept; a released buffer past that is left to the
// garbage collector.
const poolKeep = 16

var pool struct {
	sync.Mutex
	free [][]float32
}

// takeFloats returns a zeroed []float32 of length n, reusing a released
// buffer of exactly that capacity when there is one.
func takeFloats(n int) []float32 {
	pool.Lock()
	for i, b := range pool.free {
		if cap(b) == n {
			pool.free = append(pool.free[:i], pool.free[i+1:]...)
			pool.Unlock()
			b = b[:n]
			parallelClear(b)
			return b
		}
	}
	// A released buffer a little smaller than this one (a previous step's
	// activation arena, for shorter sequences) would stay resident beside
	// it, never to be taken again: drop it for the garbage collector.
	kept := pool.free[:0]
	for _, b := range pool.free {
		if c := cap(b); c < n && c >= n-n/4 {
			continue
		}
		kept = append(kept, b)
	}
	clear(pool.free[len(kept):])
	pool.free = kept
	pool.Unlock()
	return make([]float32, n)
}

// releaseFloats gives buffers back for takeFloats. The caller must not
// use them afterwards.
func releaseFloats(bufs ...[]float32) {
	pool.Lock()
	defer pool.Unlock()
	for _, b := range bufs {
		if cap(b) == 0 {
			continue
		}
		if len(pool.free) >= poolKeep {
			pool.free = pool.free[1:]
		}
		pool.free = append(pool.free, b[:cap(b)])
	}
}

// Release hands the model's parameters, gradients and activations back to
// the process's buffer pool (see takeFloats). The model must not be used
// afterwards. Stages call it when they are done with a model, so that the
// next step's model reuses the memory.
func (m *Model) Release() {
	if m == nil {
		return
	}
	for _, x := range [][]float32{m.Params, m.Grads, m.acts.arena} {
		m.be.Forget(x)
	}
	releaseFloats(m.Params, m.Grads, m.acts.arena)
	m.Params, m.Grads, m.acts.arena = nil, nil, nil
	m.releaseBF16()
	m.W, m.G = Weights{}, Weights{}
	if m.LoRA != nil {
		m.LoRA.release(m.be)
	}
}

// Release hands the moments back to the process's buffer pool; o must not
// be used afterwards.
func (o *AdamW) Release() {
	if o == nil {
		return
	}
	if o.keeper != nil {
		o.keeper.DropMoments(o)
		o.keeper, o.stale = nil, false
	}
	releaseFloats(o.M, o.V)
	o.M, o.V = nil, nil
}
