package jobs

import (
	"strings"
	"testing"
)

// TestRunnerLockShardsVersusUnsharded: the shards of one run hold the run
// together; a runner without --shard beside them is refused (exit 4), and
// so is a shard beside an unsharded runner; the same shard twice is
// refused too.
func TestRunnerLockShardsVersusUnsharded(t *testing.T) {
	root := t.TempDir()
	lock := func(shard, n int) (*RunLock, error) { return AcquireRunnerLock(root, "r", shard, n) }
	s0, err := lock(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := lock(1, 2)
	if err != nil {
		t.Fatalf("second shard refused: %v", err)
	}
	for _, tc := range []struct {
		name     string
		shard, n int
		want     string
	}{
		{"unsharded beside shards", 0, 1, "shard runners: run=r.shard=0-of-2.lock pid="},
		{"same shard twice", 1, 2, "run=r.shard=1-of-2.lock"},
	} {
		_, err := lock(tc.shard, tc.n)
		if ExitCode(err) != 4 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (exit %d), want exit 4 naming %q", tc.name, err, ExitCode(err), tc.want)
		}
	}
	s0.Release()
	s1.Release()
	u, err := lock(0, 1)
	if err != nil {
		t.Fatalf("unsharded after the shards finished: %v", err)
	}
	_, err = lock(1, 2)
	if ExitCode(err) != 4 || !strings.Contains(err.Error(), "a runner without --shard, or a drop-step: pid=") || !strings.Contains(err.Error(), "never both") {
		t.Errorf("shard beside an unsharded runner: %v", err)
	}
	u.Release()
	if s, err := lock(1, 2); err != nil {
		t.Fatalf("shard after the unsharded runner finished: %v", err)
	} else {
		s.Release()
	}
}
