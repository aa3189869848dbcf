package kernels

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// Threads and the Go scheduler.
//
// Every kernel splits its work over Workers() goroutines, most of which
// spend their time inside cgo calls. Go's monitor thread (sysmon) takes
// the P of a goroutine that has been in one cgo call for 20 µs whenever
// no other P is idle, and of one that has run 10 ms on one time slice;
// each time it does, it wakes a spinning thread and drops its own sleep
// back to 20 µs. With every P busy in a training step's products, that is
// a wake-up of sysmon, and a context switch on a core doing a product,
// every 20–80 µs; on a paravirtualised machine a context switch costs
// about 10 µs (on this project's VM, 7.8 % of a 0.5B training step).
//
// ReserveSchedulerP, held by the train, sft and logprobs stages, gives
// the runtime one P more than the kernels use, so one P is idle while
// they compute. Decoding (short products, many small parallel loops) runs
// without it: there an idle P makes each readied goroutine wake a thread,
// which costs more than it saves. Long element loops in C (AdamW) are
// cut into calls of a few milliseconds (parallelForBlocks), and every
// cgo call of more than about 0.1 ms is followed by a yield (yieldAfter),
// so no goroutine's time slice reaches 10 ms. None of this changes which
// goroutine computes which element, so the bytes never depend on it.

var (
	spareP   atomic.Int32 // 1 while a reservation is held
	spareMu  sync.Mutex
	spareN   int // reservations held
	spareOld int // GOMAXPROCS before the first
)

// Workers is the number of goroutines a kernel splits its work over:
// GOMAXPROCS, less the spare P of ReserveSchedulerP.
func Workers() int {
	return max(1, runtime.GOMAXPROCS(0)-int(spareP.Load()))
}

// ReserveSchedulerP raises GOMAXPROCS by one for the Go scheduler while
// Workers() stays at the current GOMAXPROCS (see above), until the
// returned release is called (reservations nest). RLJOB_SPARE_P=0 in the
// environment turns it off, to measure the difference.
func ReserveSchedulerP() (release func()) {
	if os.Getenv("RLJOB_SPARE_P") == "0" {
		return func() {}
	}
	spareMu.Lock()
	defer spareMu.Unlock()
	if spareN == 0 {
		spareOld = runtime.GOMAXPROCS(0)
		spareP.Store(1)
		runtime.GOMAXPROCS(spareOld + 1)
	}
	spareN++
	var once sync.Once
	return func() { once.Do(releaseSchedulerP) }
}

// yieldWork is the work (multiply-adds, or elements of an element loop
// times yieldElem) of a cgo call after which its goroutine yields.
const (
	yieldWork = 1 << 22
	yieldElem = 64
)

// yieldAfter yields the processor (runtime.Gosched) after a cgo call of
// work multiply-adds, when that is at least yieldWork (about 0.05–0.2 ms
// of one core). Go 1.26's sysmon counts a goroutine's time slice across
// its cgo calls: a worker that runs tile after tile for 10 ms has its P
// taken in the middle of one (and sysmon then sleeps 20 µs at a time for
// the next millisecond), spare P or not. A yield between calls starts a
// new slice; it costs well under a microsecond when nothing else is
// runnable. Which goroutine computes which element does not change.
func yieldAfter(work int) {
	if work >= yieldWork {
		runtime.Gosched()
	}
}

func releaseSchedulerP() {
	spareMu.Lock()
	defer spareMu.Unlock()
	if spareN--; spareN == 0 {
		runtime.GOMAXPROCS(spareOld)
		spareP.Store(0)
	}
}
