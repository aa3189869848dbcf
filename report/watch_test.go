package report

import (
	"context"
	"testing"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// TestCompleteSteps: under the live report's snapshot a run with markers
// shows only its complete steps (a's metrics are committed up to step 11,
// its markers up to step 5), a run without markers (b) shows everything,
// and the fingerprint changes when a step completes.
func TestCompleteSteps(t *testing.T) {
	ctx := context.Background()
	root := syntheticLake(t)
	lake, err := arrowio.OpenLake(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := lake.GenerateMarkers("a", 0, 6, "sha"); err != nil {
		t.Fatal(err)
	}
	cs, err := NewCompleteSteps(root)
	if err != nil {
		t.Fatal(err)
	}
	fp := cs.Fingerprint([]string{"a", "b"})
	eng, err := rsql.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	eng.SetSnapshot(cs.Snapshot())
	if err := eng.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := Build(ctx, eng, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if l := r.Series["a"]["actor/entropy"]; l == nil || !near(l.X, steps(1, 5)) {
		t.Errorf("a's entropy under the snapshot: %+v, want steps 1..5", l)
	}
	if l := r.Series["b"]["actor/entropy"]; l == nil || !near(l.X, steps(1, bSteps)) {
		t.Errorf("b's entropy (no markers): %+v", l)
	}
	if err := lake.GenerateMarkers("a", 6, 1, "sha"); err != nil {
		t.Fatal(err)
	}
	cs2, _ := NewCompleteSteps(root)
	if fp2 := cs2.Fingerprint([]string{"a", "b"}); fp2 == fp {
		t.Errorf("fingerprint %q unchanged after step 6 completed", fp)
	}
}
