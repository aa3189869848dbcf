package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCrashSafetyLoRATraining kills a training run (testdata/lora_train.sql:
// init, then rollout, reward and LoRA train steps) at random moments,
// reruns it to completion and checks that every checkpoint file (adapters,
// moments, trainer state, tokenizer) is byte-identical to an uninterrupted
// run's: a resumed LoRA run continues exactly (the rollouts it trained on
// are then the same too, or the adapters would differ).
func TestCrashSafetyLoRATraining(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test of a training job: 6 children killed and rerun; skipped under -short")
	}
	const steps = "3"
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	job, _ := filepath.Abs("testdata/lora_train.sql")
	child := func(lake string) *exec.Cmd {
		cmd := exec.Command(self, "run", job, "--lake", lake, "--run", "c", "--steps", steps, "--until-step", steps, "--seed", "7", "--log-format", "json")
		cmd.Env = append(os.Environ(), "RLJOB_TEST_MAIN=1", "RLJOB_TEST_SLOW_COMMIT=30")
		return cmd
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := child(ref).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	want, total := trainedState(t, ref), countUnits(ref)
	t.Run("trials", func(t *testing.T) {
		for i := range 6 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(20261206, uint64(i)))
				lake := filepath.Join(t.TempDir(), "lake")
				target := 1 + rng.IntN(total-1)
				cmd := child(lake)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan struct{})
				go func() { _ = cmd.Wait(); close(exited) }()
				deadline := time.Now().Add(120 * time.Second)
			wait:
				for countUnits(lake) < target && time.Now().Before(deadline) {
					select {
					case <-exited:
						break wait
					case <-time.After(2 * time.Millisecond):
					}
				}
				time.Sleep(time.Duration(rng.Int64N(int64(60 * time.Millisecond))))
				_ = cmd.Process.Kill()
				<-exited
				if out, err := child(lake).CombinedOutput(); err != nil {
					t.Fatalf("rerun: %v\n%s", err, out)
				}
				if got := trainedState(t, lake); got != want {
					t.Fatalf("killed after %d units: state differs:\n%s\nwant\n%s", target, got, want)
				}
			})
		}
	})
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
