package report

import (
	"context"
	"strings"
	"testing"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// TestReportTwoVerifiers: run a's train rollouts of step 3 are also scored
// by 'model:ref' (4 rows, all reward 1). The reward curve and the
// curriculum still count 'exact' alone (the step's mean stays 0.375, not
// (6 + 4) / 20), a note on the reward chart names both verifiers, and the
// samples show both, labelled.
func TestReportTwoVerifiers(t *testing.T) {
	root := syntheticLake(t)
	ctx := context.Background()
	mem, err := rsql.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	lake := &arrowio.Lake{Root: root}
	st, err := lake.Begin(arrowio.Unit{Table: "rewards", Run: "a", Step: 3, Call: 1}, map[string]any{"test": true})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := mem.QueryArrow(ctx, `SELECT 's3-3-' || j AS rollout_id, 'model:ref' AS verifier, 1.0::DOUBLE AS reward, true AS correct, 'p=1' AS extracted FROM range(4) q(j)`)
	if err != nil {
		t.Fatal(err)
	}
	sch, _ := arrowio.SchemaFor("rewards")
	if _, err := st.WriteRecords("", sch, rr); err != nil {
		t.Fatal(err)
	}
	rr.Release()
	if _, err := st.Commit(); err != nil {
		t.Fatal(err)
	}

	r, err := buildReportPrompts(t, root, []string{"a"}, "p3")
	if err != nil {
		t.Fatal(err)
	}
	var reward, cur *Chart
	for _, c := range r.Charts {
		switch c.ID {
		case "reward":
			reward = c
		case "curriculum-a":
			cur = c
		}
	}
	ones := make([]float64, trainSteps)
	for i := range ones {
		ones[i] = 0.375
	}
	checkSeries(t, map[string]*Chart{"reward": reward}, "reward", "a", "reward (scored)", steps(1, trainSteps), ones)
	note := strings.Join(reward.Notes, "\n")
	for _, w := range []string{"count verifier 'exact' (160 train rows)", "'model:ref' (4 rows)", "scored_all"} {
		if !strings.Contains(note, w) {
			t.Errorf("reward chart notes %q lack %q", note, w)
		}
	}
	// Curriculum of step 3: p3 is 3 of 4 right under exact (bin (1/2, 3/4]).
	if s := seriesNamed(cur, "a", "(1/2, 3/4]"); s == nil || s.Y[2] != 0.25 {
		t.Errorf("curriculum (1/2, 3/4] of step 3: %+v, want 0.25", s)
	}
	verifiers := map[string]int{}
	for _, s := range r.Samples {
		if s.Step == 3 && s.PromptID == "p3" {
			verifiers[s.Verifier]++
		}
	}
	if verifiers["exact"] != 4 || verifiers["model:ref"] != 4 {
		t.Errorf("samples of p3 at step 3 by verifier: %v, want 4 each", verifiers)
	}
}
