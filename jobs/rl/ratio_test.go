package rl

import "testing"

// TestFirstRatioExactlyOne: the sampler and train's forward compute log π
// with the same batch-invariant kernels (issue 8), so on an on-policy step
// the first minibatch's ratio π_θ/π_old is exactly 1: max |log ρ| is 0,
// not merely small.
func TestFirstRatioExactlyOne(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 2 GRPO steps of a tiny model")
	}
	lake, _ := grpoRun(t, 2, 7)
	for step := 1; step <= 2; step++ {
		m := metricsOf(t, lake, step)
		r, ok := m["actor/first_max_abs_log_ratio"]
		if !ok {
			t.Fatalf("step %d: no actor/first_max_abs_log_ratio metric (have %v)", step, keys2(m))
		}
		if r != 0 {
			t.Errorf("step %d: max |log π_θ − log π_old| at the start of train = %g, want exactly 0", step, r)
		}
	}
}
