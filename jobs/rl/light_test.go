package rl

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// lightJob is grpoJob with full_state_every := 3 and extra arguments in
// its train call.
func lightJob(extra string) string {
	return strings.Replace(grpoJob, trainCall, strings.Replace(trainCall, ");", ", full_state_every := 3"+extra+");", 1), 1)
}

// trainedState is a checkpoint's trained parameters and moments, copied.
type trainedState struct{ params, m, v []float32 }

func stateOf(ck *trainer.Checkpoint) trainedState {
	_, p, _ := ck.Model.Trainable()
	s := trainedState{params: slices.Clone(p)}
	if ck.Opt != nil {
		s.m, s.v = slices.Clone(ck.Opt.M), slices.Clone(ck.Opt.V)
	}
	return s
}

func (s trainedState) equal(o trainedState) bool {
	bits := func(a, b []float32) bool {
		return len(a) == len(b) && slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
	}
	return bits(s.params, o.params) && bits(s.m, o.m) && bits(s.v, o.v)
}

// resetCache empties the process's light checkpoint cache (a cold start).
func resetCache() {
	lightCache.Lock()
	ck := lightCache.ck
	lightCache.dir, lightCache.ck, lightCache.busy = "", nil, false
	lightCache.Unlock()
	if ck != nil {
		ck.Model.Release()
		ck.Opt.Release()
	}
}

// TestLightCheckpointsReplay runs 5 GRPO steps with full_state_every := 3
// (light checkpoints at steps 1, 2, 4, 5; full at 3) step by step in one
// process, and the same with full_state_every := 1 (a full state every
// step), for full fine-tuning and LoRA (whose step 1 puts fresh adapters
// on the base). Then, cold (empty cache), it loads every checkpoint: a
// light one replays from its parent chain and must give, bit for bit,
// the parameters and moments the training process held in memory when it
// committed it, and those the full-state run wrote to its files; both runs
// sampled the same rollouts.
func TestLightCheckpointsReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 4 × 5 GRPO steps of a tiny model")
	}
	for _, tc := range []struct{ name, extra, job string }{
		{"full", "", ""},
		{"lora", ", lora_rank := 4, lora_targets := 'q,v,down'", ""},
		{"kl+minibatches", ", ref := 'step=0', kl_coef := 0.05, minibatch_size := 8, epochs := 2, entropy_coef := 0.01", ""},
		{"bf16", ", dtype := 'bf16'", ""},
		// sft on the step's rollouts instead of train: its light
		// checkpoints replay sftUpdate (shuffled batches, two epochs, a
		// cosine schedule), and the next step samples from them.
		{"sft", "", strings.Replace(grpoJob, trainCall, "CALL sft(data := 'SELECT prompt, completion FROM this_step', lr := 1e-2, "+
			"batch_size := 8, micro_batch_size := 3, epochs := 2, warmup := 1, schedule := 'cosine', full_state_every := 3);", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := tc.job
			if job == "" {
				job = lightJob(tc.extra)
			}
			resetCache()
			light, config := testLake(t)
			mustRun(t, light, config, initJob, runOpt{seed: 4})
			inMemory := map[int]trainedState{}
			for step := 1; step <= 5; step++ {
				mustRun(t, light, config, job, runOpt{seed: 4})
				dir := ckDir(t, light, "r", step)
				if want := step != 3; trainer.IsLightDir(dir) != want {
					t.Fatalf("step %d: light %v, want %v (files %v)", step, !want, want, keys(checkpointFiles(t, light, step)))
				}
				if ck := cacheBorrow(dir); ck != nil {
					inMemory[step] = stateOf(ck)
					releaseModel(ck.Model)
				} else if step != 3 {
					t.Fatalf("step %d: the light checkpoint the stage wrote is not in the process's cache", step)
				}
			}
			full, config := testLake(t)
			mustRun(t, full, config, initJob, runOpt{seed: 4})
			mustRun(t, full, config, strings.Replace(job, "full_state_every := 3", "full_state_every := 1", 1), runOpt{seed: 4, steps: 5})
			if a, b := rolloutContent(t, light), rolloutContent(t, full); len(a) != 5*24 || !equal(a, b) {
				t.Fatalf("rollouts of the light and the full-state run differ (%d vs %d rows)", len(a), len(b))
			}
			sameFiles(t, "full state of step 3", checkpointFiles(t, light, 3), checkpointFiles(t, full, 3))
			resetCache()
			for step := 1; step <= 5; step++ {
				got, err := trainer.LoadCheckpoint(ckDir(t, light, "r", step))
				if err != nil {
					t.Fatalf("cold load of step %d: %v", step, err)
				}
				want, err := trainer.LoadCheckpoint(ckDir(t, full, "r", step))
				if err != nil {
					t.Fatal(err)
				}
				if !stateOf(got).equal(stateOf(want)) {
					t.Errorf("step %d: replayed state differs from the full-state run's", step)
				}
				if mem, ok := inMemory[step]; ok && !stateOf(got).equal(mem) {
					t.Errorf("step %d: replayed state differs from the one the training process held", step)
				}
				if got.Tokenizer == nil || got.Opt.Step != want.Opt.Step || (got.Model.LoRA != nil) != (tc.name == "lora") {
					t.Errorf("step %d: tokenizer %v, optimizer step %d, LoRA %v", step, got.Tokenizer != nil, got.Opt.Step, got.Model.LoRA != nil)
				}
				got.Model.Release()
				want.Model.Release()
			}
		})
	}
}

// TestLightCheckpointBytes: a light checkpoint of 24 rows is a few kB,
// while the full state of even this tiny model is far more.
func TestLightCheckpointBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 3 GRPO steps")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 4})
	mustRun(t, lake, config, lightJob(""), runOpt{seed: 4, steps: 3})
	size := func(step int) int {
		n := 0
		for _, b := range checkpointFiles(t, lake, step) {
			n += len(b)
		}
		return n
	}
	if l, f := size(2), size(3); l > 8<<10 || f < 10*l {
		t.Errorf("light checkpoint %d bytes, full state %d", l, f)
	}
}

// TestLightMissingParent: a light checkpoint whose parent folder is gone
// does not load, and the error names both folders; the next step of the
// run fails the same way before committing anything.
func TestLightMissingParent(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 2 GRPO steps")
	}
	resetCache()
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 4})
	mustRun(t, lake, config, lightJob(""), runOpt{seed: 4, steps: 2})
	resetCache()
	parent, child := ckDir(t, lake, "r", 1), ckDir(t, lake, "r", 2)
	if err := os.RemoveAll(parent); err != nil {
		t.Fatal(err)
	}
	_, err := trainer.LoadCheckpoint(child)
	if err == nil || !strings.Contains(err.Error(), child) || !strings.Contains(err.Error(), parent) {
		t.Fatalf("err = %v, want one naming %s and %s", err, child, parent)
	}
	_, err = runJob(t, lake, config, lightJob(""), runOpt{seed: 4})
	var de *jobs.DataError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), parent) {
		t.Fatalf("next step: err = %v, want a data error naming the missing parent", err)
	}
	if got := query(t, lake, "SELECT count(*) FROM rollouts WHERE step = 3"); !equal(got, []string{"0"}) {
		t.Errorf("the failed step committed rollouts: %v", got)
	}
}

// TestLightCarryForward: a train call on empty data at step 2 copies step
// 1's light folder; the copy replays (its parent link names the same
// state) to step 1's parameters; step 3 trains from the copy, which
// counts in its chain (depth 2).
func TestLightCarryForward(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 3 GRPO steps")
	}
	resetCache()
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 4})
	job := strings.Replace(lightJob(""), "data := 'train_batch'", "data := 'SELECT * FROM train_batch WHERE getvariable(''step'') <> 2'", 1)
	mustRun(t, lake, config, job, runOpt{seed: 4, steps: 3})
	sameFiles(t, "carried light checkpoint", checkpointFiles(t, lake, 1), checkpointFiles(t, lake, 2))
	resetCache()
	load := func(step int) trainedState {
		ck, err := trainer.LoadCheckpoint(ckDir(t, lake, "r", step))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		defer ck.Model.Release()
		return stateOf(ck)
	}
	if !load(1).equal(load(2)) {
		t.Error("the carried copy replays to another state than its source")
	}
	if st, err := readTrainerState(ckDir(t, lake, "r", 3)); err != nil || st.Light == nil || st.Light.Depth != 2 || !strings.Contains(st.Light.Parent, "step=2") {
		t.Errorf("step 3: want a light checkpoint of depth 2 replaying from the step-2 copy, got %+v (%v)", st, err)
	}
	if load(3).equal(load(2)) {
		t.Error("step 3 did not train")
	}
}

// TestLightGCKeepsChain: lake gc --keep-checkpoints last=1 keeps the
// newest checkpoint's replay chain (steps 4, the light parent, and 3, the
// full state) and removes the others but the run's first.
func TestLightGCKeepsChain(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 5 GRPO steps")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 4})
	mustRun(t, lake, config, lightJob(""), runOpt{seed: 4, steps: 5})
	l, err := arrowio.OpenLake(lake)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := l.PlanRetention(arrowio.Retention{Last: 1}, "r", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kept, removed []string
	for u := range plan.Keep {
		kept = append(kept, fmt.Sprint(u.Step))
	}
	for _, u := range plan.Remove {
		removed = append(removed, fmt.Sprint(u.Step))
	}
	slices.Sort(kept)
	slices.Sort(removed)
	if strings.Join(kept, ",") != "0,3,4,5" || strings.Join(removed, ",") != "1,2" {
		t.Fatalf("gc keeps steps %v and removes %v, want 0,3,4,5 and 1,2 (%v)", kept, removed, plan.Keep)
	}
	for _, u := range plan.Remove {
		if err := l.RemoveUnit(u); err != nil {
			t.Fatal(err)
		}
	}
	resetCache()
	if _, err := trainer.LoadCheckpoint(ckDir(t, lake, "r", 5)); err != nil {
		t.Fatalf("step 5 after gc: %v", err)
	}
}

// TestLightCheckpointsEpisodes: a light checkpoint of a train call on
// episode rows keeps their policy_mask, so a cold replay trains on the
// policy's tokens only, as the call did: 2 GRPO steps on episodes with
// full_state_every := 2 (step 1 light) and := 1 sample the same rollouts,
// and step 1 loaded cold equals the full-state run's step 1 bit for bit.
func TestLightCheckpointsEpisodes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 2 × 2 GRPO steps on episodes")
	}
	job := func(k int) string {
		return strings.Replace(episodeJob, "lr := 1e-2);", fmt.Sprintf("lr := 1e-2, full_state_every := %d);", k), 1)
	}
	resetCache()
	light, config := testLake(t)
	mustRun(t, light, config, initJob, runOpt{seed: 4})
	mustRun(t, light, config, job(2), runOpt{seed: 4, steps: 2})
	full, config := testLake(t)
	mustRun(t, full, config, initJob, runOpt{seed: 4})
	mustRun(t, full, config, job(1), runOpt{seed: 4, steps: 2})
	if !trainer.IsLightDir(ckDir(t, light, "r", 1)) || trainer.IsLightDir(ckDir(t, full, "r", 1)) {
		t.Fatal("step 1 should be light with full_state_every := 2 and full with := 1")
	}
	if a, b := rolloutContent(t, light), rolloutContent(t, full); len(a) != 2*12 || !equal(a, b) {
		t.Fatalf("rollouts of the light and the full-state run differ (%d vs %d rows)", len(a), len(b))
	}
	resetCache()
	got, err := trainer.LoadCheckpoint(ckDir(t, light, "r", 1))
	if err != nil {
		t.Fatalf("cold load of the light step 1: %v", err)
	}
	defer got.Model.Release()
	want, err := trainer.LoadCheckpoint(ckDir(t, full, "r", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Model.Release()
	if !stateOf(got).equal(stateOf(want)) {
		t.Fatal("replayed step 1 differs from the full-state run's: the replay did not train on the policy tokens only")
	}
}
