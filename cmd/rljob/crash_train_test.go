package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCrashSafetyTraining kills training runs with light checkpoints
// (full_state_every := 3: the train checkpoints of steps 1, 2 are light,
// 3 full, 4, 5 light) at chosen moments and reruns them to completion;
// every checkpoint file (light: trainer_state.json, train_inputs; full:
// weights or adapters, moments, trainer state, tokenizer) must be
// byte-identical to an uninterrupted run's. A rerun that resumes after a
// light checkpoint replays it from its parent chain: the later
// checkpoints, full states included, equal the uninterrupted run's only
// if the replay gave the very bits the crashed process held in memory.
//
// Two jobs: full fine-tuning (testdata/full_train.sql) and LoRA
// (testdata/lora_train.sql). Kill moments, for train checkpoint j of each
// kind (2: light after light, 3: full after light, 4: light after full):
// before its commit (the step's rollout committed, train still running),
// inside it (its staging folder exists: files written, rename pending)
// and after it (committed, the step's metrics not yet); and before every
// statement of steps 3 and 4 (RLJOB_TEST_KILL_AT).
func TestCrashSafetyTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test of training jobs: 46 children killed and rerun; skipped under -short")
	}
	for _, job := range []string{"full_train.sql", "lora_train.sql"} {
		t.Run(strings.TrimSuffix(job, ".sql"), func(t *testing.T) {
			path, _ := filepath.Abs(filepath.Join("testdata", job))
			child := trainChild(t, path)
			ref := filepath.Join(t.TempDir(), "ref")
			if out, err := child(ref).CombinedOutput(); err != nil {
				t.Fatalf("reference run: %v\n%s", err, out)
			}
			want := trainedState(t, ref)
			checkLightFull(t, ref)
			// Killed before every statement of step 3 (its train writes the
			// full state from a replayed chain) and of step 4 (light, after
			// the full state), and before the step markers.
			for _, step := range []int{3, 4} {
				for i := 0; i <= statements(t, path); i++ {
					t.Run(fmt.Sprintf("step%d-stmt%d", step, i), func(t *testing.T) {
						t.Parallel()
						lake := filepath.Join(t.TempDir(), "lake")
						cmd := child(lake)
						cmd.Env = append(cmd.Env, fmt.Sprintf("RLJOB_TEST_KILL_AT=%d:%d", step, i))
						if out, err := cmd.CombinedOutput(); err == nil {
							t.Fatalf("not killed before statement %d of step %d:\n%s", i, step, tail(string(out), 1000))
						}
						if out, err := child(lake).CombinedOutput(); err != nil {
							t.Fatalf("rerun: %v\n%s", err, out)
						}
						if got := trainedState(t, lake); got != want {
							t.Fatalf("killed before statement %d of step %d: state differs:\n%s\nwant\n%s", i, step, got, want)
						}
					})
				}
			}
			for _, j := range []int{2, 3, 4} {
				for _, when := range []string{"before", "inside", "after"} {
					t.Run(fmt.Sprintf("step%d-%s", j, when), func(t *testing.T) {
						t.Parallel()
						lake := filepath.Join(t.TempDir(), "lake")
						killAt(t, child(lake), lake, j, when)
						if out, err := child(lake).CombinedOutput(); err != nil {
							t.Fatalf("rerun: %v\n%s", err, out)
						}
						if got := trainedState(t, lake); got != want {
							t.Fatalf("killed %s the commit of step %d's checkpoint: state differs:\n%s\nwant\n%s", when, j, got, want)
						}
					})
				}
			}
		})
	}
}

// trainChild returns the command that runs job (a training job of
// testdata, 6 steps) on a lake in a child process, this test binary
// re-executed as rljob with 30 ms sleeps inside and after each commit
// (RLJOB_TEST_SLOW_COMMIT) for killAt to aim at; extra is added to the
// arguments (--device cuda).
func trainChild(t *testing.T, job string, extra ...string) func(lake string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const steps = "6"
	return func(lake string) *exec.Cmd {
		args := append([]string{"run", job, "--lake", lake, "--run", "c", "--steps", steps, "--until-step", steps, "--seed", "7", "--log-format", "json"}, extra...)
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1", "RLJOB_TEST_SLOW_COMMIT=30")
		return cmd
	}
}

// checkLightFull fails unless the checkpoints of run c are those the
// crash tests expect of full_state_every := 3.
func checkLightFull(t *testing.T, lake string) {
	t.Helper()
	if got := checkpointKinds(t, lake); got != "0:full 1:light 2:light 3:full 4:light 5:light" {
		t.Fatalf("reference checkpoints %s, want steps 1, 2, 4, 5 light (full_state_every := 3)", got)
	}
}

// killAt starts cmd and SIGKILLs it before, inside or after the commit of
// the train checkpoint of step j (see TestCrashSafetyTraining), or, when
// is "rollout", inside the commit of step j's rollouts (sampled, staged,
// rename pending).
func killAt(t *testing.T, cmd *exec.Cmd, lake string, j int, when string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	ck := filepath.Join(lake, "checkpoints", "run=c", fmt.Sprintf("step=%d", j))
	rollouts := filepath.Join(lake, "rollouts", "run=c", fmt.Sprintf("step=%d", j), "part-*", "_commit.json")
	staged := func(table string) bool {
		m, _ := filepath.Glob(filepath.Join(lake, "_staging", fmt.Sprintf("%s.c.%d.*", table, j)))
		for _, d := range m {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				return true
			}
		}
		return false
	}
	ready := func() bool {
		switch when {
		case "rollout": // the step's rollouts are staged, not yet renamed into place
			return staged("rollouts")
		case "before": // the step's rollouts are in; its train has not committed
			m, _ := filepath.Glob(rollouts)
			return len(m) > 0
		case "inside": // the checkpoint is staged, not yet renamed into place
			return staged("checkpoints")
		}
		m, _ := filepath.Glob(filepath.Join(ck, "part-*", "_commit.json"))
		return len(m) > 0
	}
	deadline := time.Now().Add(120 * time.Second)
wait:
	for !ready() && time.Now().Before(deadline) {
		select {
		case <-exited:
			break wait
		case <-time.After(time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	committed, _ := filepath.Glob(filepath.Join(ck, "part-*", "_commit.json"))
	switch {
	case when == "after" && len(committed) == 0, when != "after" && len(committed) > 0:
		t.Fatalf("kill %s the commit of step %d landed elsewhere (checkpoint committed: %v)", when, j, len(committed) > 0)
	}
	if m, _ := filepath.Glob(rollouts); when == "rollout" && len(m) > 0 {
		t.Fatalf("kill inside the commit of step %d's rollouts landed after it", j)
	}
}

// checkpointKinds lists each checkpoint step of run c as light or full.
func checkpointKinds(t *testing.T, lake string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(lake, "checkpoints", "run=c", "step=*", "part-*"))
	sort.Strings(dirs)
	var out []string
	for _, d := range dirs {
		kind := "full"
		if _, err := os.Stat(filepath.Join(d, "train_inputs.safetensors")); err == nil {
			kind = "light"
		}
		out = append(out, strings.TrimPrefix(filepath.Base(filepath.Dir(d)), "step=")+":"+kind)
	}
	return strings.Join(out, " ")
}

// trainedState is the sha256 of every checkpoint file but _commit.json
// (which holds times), by path.
func trainedState(t *testing.T, lake string) string {
	t.Helper()
	var lines []string
	for f, h := range snapshot(t, lake) {
		if strings.HasPrefix(f, "checkpoints/") && !strings.HasSuffix(f, "_commit.json") {
			lines = append(lines, f+" "+h)
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		t.Fatal("no checkpoint files")
	}
	return strings.Join(lines, "\n")
}

// TestCrashSafetyDeviceKills runs TestCrashSafetyCUDA's kill set with
// --device cpu on the full fine-tuning job: the harness the GPU test
// uses, proven on any machine (TestCrashSafetyTraining kills the LoRA job
// on the CPU; the second job would add 11 s to make test).
func TestCrashSafetyDeviceKills(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test of training jobs: 5 children killed and rerun; skipped under -short")
	}
	deviceKills(t, "cpu", "full_train.sql")
}

// deviceKills runs the training jobs of testdata (full_train.sql and
// lora_train.sql: full fine-tuning and LoRA, light checkpoints at steps
// 1, 2, 4, 5) with --device dev, uninterrupted, then
// SIGKILLed once at each kind of moment and rerun to completion with
// --device dev. Every rerun must give the uninterrupted run's checkpoint
// files byte for byte (trainedState), its rollouts (tokens, log-prob
// bits as shortest text, seeds) and rewards rows, the same commit units,
// and record dev in every call and checkpoint. The moments:
//
//   - step2-rollout: inside the commit of step 2's rollouts (sampled
//     from the policy of light checkpoint 1, staged, rename pending): the
//     rerun replays checkpoint 1 and samples step 2 again;
//   - step2-after: light checkpoint 2 committed: the rerun replays the
//     light chain 1, 2 from step 0's full state, then trains step 3;
//   - step3-before: step 3's rollouts committed, its train running;
//   - step3-inside: the full checkpoint of step 3 staged, rename pending;
//   - step4-after: light checkpoint 4 committed, replayed from the full
//     state of step 3 by the rerun.
func deviceKills(t *testing.T, dev string, jobs ...string) {
	kills := []struct {
		step int
		when string
	}{{2, "rollout"}, {2, "after"}, {3, "before"}, {3, "inside"}, {4, "after"}}
	for _, job := range jobs {
		t.Run(strings.TrimSuffix(job, ".sql"), func(t *testing.T) {
			path, _ := filepath.Abs(filepath.Join("testdata", job))
			child := trainChild(t, path, "--device", dev)
			ref := filepath.Join(t.TempDir(), "ref")
			t0 := time.Now()
			if out, err := child(ref).CombinedOutput(); err != nil {
				t.Fatalf("reference run: %v\n%s", err, out)
			}
			t.Logf("reference run (--device %s): %v", dev, time.Since(t0).Round(time.Millisecond))
			checkLightFull(t, ref)
			checkDevices(t, ref, dev)
			want, wantRows, wantUnits := trainedState(t, ref), rolloutRows(t, ref), units(t, ref)
			for _, k := range kills {
				t.Run(fmt.Sprintf("step%d-%s", k.step, k.when), func(t *testing.T) {
					t.Parallel()
					lake := filepath.Join(t.TempDir(), "lake")
					killAt(t, child(lake), lake, k.step, k.when)
					if out, err := child(lake).CombinedOutput(); err != nil {
						t.Fatalf("rerun: %v\n%s", err, tail(string(out), 2000))
					}
					if got := trainedState(t, lake); got != want {
						t.Errorf("checkpoints differ from the uninterrupted run's:\n%s\nwant\n%s", got, want)
					}
					if got := rolloutRows(t, lake); got != wantRows {
						t.Errorf("rollouts or rewards differ from the uninterrupted run's:\n%s\nwant\n%s", got, wantRows)
					}
					if got := units(t, lake); got != wantUnits {
						t.Errorf("commit units differ:\n%s\nwant\n%s", got, wantUnits)
					}
					checkDevices(t, lake, dev)
				})
			}
		})
	}
}

// rolloutRows is the rollouts (timestamps aside) and rewards of a lake as
// CSV.
func rolloutRows(t *testing.T, lake string) string {
	t.Helper()
	return dumpQueries(t, lake,
		"SELECT count(*) AS rollouts FROM rollouts",
		"SELECT * EXCLUDE (created_at) FROM rollouts ORDER BY ALL",
		"SELECT * FROM rewards ORDER BY ALL")
}

// checkDevices fails unless every call and checkpoint of lake records dev.
func checkDevices(t *testing.T, lake, dev string) {
	t.Helper()
	for _, table := range []string{"calls", "checkpoints"} {
		units := manifestDevices(t, filepath.Join(lake, table))
		if len(units) == 0 {
			t.Errorf("no %s units in %s", table, lake)
		}
		for unit, d := range units {
			if d != dev {
				t.Errorf("%s: device %v, want %s", unit, d, dev)
			}
		}
	}
}
