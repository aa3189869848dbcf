package kernels

import (
	"runtime"
	"testing"
)

// TestReserveSchedulerP: a reservation raises GOMAXPROCS by one and keeps
// Workers() where it was; reservations nest, a release twice counts once,
// and the last release restores both.
func TestReserveSchedulerP(t *testing.T) {
	t.Setenv("RLJOB_SPARE_P", "")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	check := func(when string, procs, workers int) {
		t.Helper()
		if p, w := runtime.GOMAXPROCS(0), Workers(); p != procs || w != workers {
			t.Errorf("%s: GOMAXPROCS %d, Workers %d; want %d, %d", when, p, w, procs, workers)
		}
	}
	check("before", 2, 2)
	r1 := ReserveSchedulerP()
	check("reserved", 3, 2)
	r2 := ReserveSchedulerP()
	check("reserved twice", 3, 2)
	r2()
	r2()
	check("one released (twice)", 3, 2)
	r1()
	check("released", 2, 2)

	t.Setenv("RLJOB_SPARE_P", "0")
	r := ReserveSchedulerP()
	check("RLJOB_SPARE_P=0", 2, 2)
	r()
}
