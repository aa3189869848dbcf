package trainer

import (
	"sync"

	"github.com/rljob/rljob/kernels"
)

// parallelFor splits [0, n) into at most kernels.Workers() contiguous ranges of at
// least grain items and runs f on each concurrently. Each index is handled
// by exactly one call, so results never depend on the number of goroutines
// as long as f's work per index is independent.
func parallelFor(n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	w := min(kernels.Workers(), (n+grain-1)/grain)
	if w <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + w - 1) / w
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
