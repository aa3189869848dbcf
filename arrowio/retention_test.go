package arrowio

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func commitCheckpoint(t *testing.T, l *Lake, run string, step int64, call int, args map[string]any) {
	t.Helper()
	s, err := l.Begin(Unit{Table: TableCheckpoints, Run: run, Step: step, Call: call}, args)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile("model.safetensors", func(w io.Writer) error { _, err := io.WriteString(w, "weights"); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestParseRetention(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Retention
		err  string
	}{
		{"last=3,every=100", Retention{3, 100}, ""},
		{"every=10", Retention{1, 10}, ""},
		{"last=2", Retention{2, 0}, ""},
		{"last=0", Retention{}, "at least the newest"},
		{"every=-1", Retention{}, ">= 0"},
		{"keep=3", Retention{}, "unknown key"},
		{"last=x", Retention{}, "whole numbers"},
		{"last=2,last=3", Retention{}, `last given twice ("last=2" and "last=3")`},
		{"every=2, every=2", Retention{}, "every given twice"},
		{"", Retention{}, "whole numbers"},
	} {
		got, err := ParseRetention(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestPlanRetention: last=2,every=5 over run a's checkpoints 0..9 (two at
// step 4) removes exactly those nothing names: not the first, the last 2,
// every 5th step, nor a step that another run's init_policy, a checkpoint
// manifest's policy, a call record's policy argument or an eval rollout
// names; an on-policy train rollout protects nothing.
func TestPlanRetention(t *testing.T) {
	l, err := OpenLake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for step := int64(0); step < 10; step++ {
		args := map[string]any{"policy": "latest"}
		if step == 6 {
			args["policy"] = "step=2"
		}
		if step == 4 {
			commitCheckpoint(t, l, "a", step, 1, args)
		}
		commitCheckpoint(t, l, "a", step, 3, args)
	}
	commitCheckpoint(t, l, "b", 0, 0, map[string]any{"policy": "run=a/step=3"})
	commitCheckpoint(t, l, "c", 0, 0, map[string]any{"policy": l.Path("checkpoints/run=a/step=5/part-3-0")})
	args := []ArgRef{{Run: "a", Step: 9, Value: "step=4"}}
	rollouts := []RolloutRef{
		{Run: "a", Step: 7, PolicyStep: 1, Train: false}, // eval of checkpoint 1
		{Run: "a", Step: 8, PolicyStep: 7, Train: true},  // on-policy
	}
	ret := Retention{Last: 2, Every: 0}
	plan, err := l.PlanRetention(ret, "", args, rollouts)
	if err != nil {
		t.Fatal(err)
	}
	unit := func(step int64, call int) Unit {
		return Unit{Table: TableCheckpoints, Run: "a", Step: step, Call: call}
	}
	// every=0: step 5 is kept only because run c's init_policy names its folder.
	if want := []Unit{unit(6, 3), unit(7, 3)}; !reflect.DeepEqual(plan.Remove, want) {
		t.Fatalf("remove %v, want %v (kept: %v)", plan.Remove, want, plan.Keep)
	}
	for u, want := range map[Unit]string{
		unit(0, 3): "first", unit(1, 3): "rollouts of step 7", unit(2, 3): `"step=2"`, unit(3, 3): `"run=a/step=3"`,
		unit(4, 1): `"step=4"`, unit(4, 3): `"step=4"`, unit(5, 3): "run=a/step=5", unit(8, 3): "last 2", unit(9, 3): "last 2",
	} {
		if !strings.Contains(plan.Keep[u], want) {
			t.Errorf("%s kept because %q, want %q", u.Dir(), plan.Keep[u], want)
		}
	}
	// every=3 keeps step 6 too; only run b: nothing of run a goes.
	if plan, err = l.PlanRetention(Retention{Last: 2, Every: 3}, "", args, rollouts); err != nil {
		t.Fatal(err)
	}
	if want := []Unit{unit(7, 3)}; !reflect.DeepEqual(plan.Remove, want) {
		t.Fatalf("every=3: remove %v, want %v", plan.Remove, want)
	}
	if plan, err = l.PlanRetention(ret, "b", args, rollouts); err != nil || len(plan.Remove) != 0 {
		t.Fatalf("run b: remove %v (%v), want none", plan.Remove, err)
	}
	// Removing the plan's units leaves a lake that verifies.
	if plan, err = l.PlanRetention(ret, "", args, rollouts); err != nil {
		t.Fatal(err)
	}
	for _, u := range plan.Remove {
		if err := l.RemoveUnit(u); err != nil {
			t.Fatal(err)
		}
		if ok, _ := l.IsCommitted(u); ok {
			t.Fatalf("%s still committed", u.Dir())
		}
	}
	if _, problems, err := l.Verify(); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v %v", problems, err)
	}
	left, err := l.Units(TableCheckpoints, "a")
	if err != nil || len(left) != 9 {
		t.Fatalf("%d checkpoints of run a left (%v), want 9", len(left), err)
	}
}

// TestRetentionManifestRefs: a checkpoint manifest as train writes it
// (args.policy 'latest', its parent recorded at the top level) keeps no
// parent, in place or after the lake moved; a folder given as policy keeps
// the recorded parent, lake-relative or an old absolute path of a lake
// since moved; step=K keeps step K.
func TestRetentionManifestRefs(t *testing.T) {
	l, err := OpenLake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	parent := func(step int64) string { return Unit{Table: TableCheckpoints, Run: "a", Step: step, Call: 1}.Dir() }
	gone := "/old/place/lake/" + parent(3) // an absolute path of the lake before a move
	for step := int64(0); step < 8; step++ {
		args := map[string]any{"args": map[string]any{"policy": "latest"}}
		switch step {
		case 1:
			args["args"] = map[string]any{"policy": "latest", "ref": "step=0"}
		case 5:
			args["args"] = map[string]any{"policy": "../ckpts/x"} // a folder, relative to the job file
			args["policy"] = parent(2)
		case 6:
			args["args"] = map[string]any{"policy": "/old/place/lake/" + parent(3)}
			args["policy"] = gone
		case 7:
			args["args"] = map[string]any{"policy": "step=4"}
		}
		if step > 0 && args["policy"] == nil {
			args["policy"] = l.Path(parent(step - 1)) // absolute, as rljob wrote it before
		}
		commitCheckpoint(t, l, "a", step, 1, args)
	}
	plan, err := l.PlanRetention(Retention{Last: 1}, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var removed []int64
	for _, u := range plan.Remove {
		removed = append(removed, u.Step)
	}
	// kept: 0 (first, ref of step 1), 2 (folder of step 5), 3 (old absolute
	// folder of step 6), 4 (step=4 of step 7), 7 (last).
	if want := []int64{1, 5, 6}; !reflect.DeepEqual(removed, want) {
		t.Fatalf("removed steps %v, want %v (kept %v)", removed, want, plan.Keep)
	}
}
