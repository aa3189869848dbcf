package kernels

import "sync"

// parallelFor calls f(lo, hi) on contiguous chunks covering [0, n), each
// index exactly once, using up to Workers() goroutines. Chunks hold at least
// grain indices so tiny loops stay on the calling goroutine.
//
// Determinism: callers make each output element depend on one index only
// (computed in a fixed order inside f), so the chunking — which does depend
// on GOMAXPROCS — never changes the bytes. Reductions across indices use
// fixedChunks instead.
func parallelFor(n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	workers := Workers()
	if maxw := (n + grain - 1) / grain; workers > maxw {
		workers = maxw
	}
	if workers <= 1 {
		f(0, n)
		return
	}
	// More chunks than workers balances uneven rows (causal attention) while
	// the per-index work stays independent of the split.
	runChunks(n, min(workers*4, (n+grain-1)/grain), workers, f)
}

// parallelForBlocks is parallelFor with chunks of at most block indices,
// for long element loops in C (AdamW): each cgo call stays a few
// milliseconds long, so the scheduler never takes its P (threads.go).
func parallelForBlocks(n, block int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := max(1, (n+block-1)/block)
	workers := min(Workers(), chunks)
	if workers <= 1 {
		for c := range chunks {
			f(c*n/chunks, (c+1)*n/chunks)
		}
		return
	}
	runChunks(n, chunks, workers, f)
}

// runChunks runs f on chunks c = 0..chunks-1, [c·n/chunks, (c+1)·n/chunks),
// handed out in order to workers goroutines as they finish the previous.
func runChunks(n, chunks, workers int, f func(lo, hi int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				c := next
				next++
				mu.Unlock()
				if c >= chunks {
					return
				}
				lo := c * n / chunks
				hi := (c + 1) * n / chunks
				if lo < hi {
					f(lo, hi)
				}
			}
		}()
	}
	wg.Wait()
}

// reduceChunk is the fixed size of the chunks that reductions (GradNorm,
// bias and norm-weight gradients) split their input into. It does not
// depend on the number of threads, so partial sums — and their fixed-order
// total — are the same bytes on any machine.
const reduceChunk = 1 << 14
