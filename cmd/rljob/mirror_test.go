package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// mirrorEnv makes a child's --device cuda the mirror backend (TestMain).
var mirrorEnv = []string{"RLJOB_TEST_DEVICE=mirror"}

// TestMirrorDeviceSameBytes runs the arith pipeline (prepare, one SFT
// epoch, 3 GRPO steps, eval) and the training jobs of the crash tests
// (full fine-tuning and LoRA, light checkpoints replayed) with --device
// cpu, then with --device cuda on the mirror backend, which computes on
// its own copy of every buffer the model keeps there and leaves NaN in
// the host's stale elements, as a GPU would leave them stale. Every lake
// row and checkpoint byte must be the CPU run's (the calls' recorded
// device aside): the stages keep the residency rules the CUDA backend
// relies on.
func TestMirrorDeviceSameBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the arith pipeline and two training jobs, twice each")
	}
	t.Run("arith", func(t *testing.T) {
		var ref map[string]string
		for _, dev := range []string{"cpu", "cuda"} {
			env := []string{}
			if dev == "cuda" {
				env = mirrorEnv
			}
			got := lakeContent(t, shortArith(t, env, "--device", dev))
			got["calls"] = strings.ReplaceAll(got["calls"], `""device"": ""cuda""`, `""device"": ""cpu""`)
			if ref == nil {
				ref = got
				continue
			}
			sameContent(t, "--device cuda on the mirror against --device cpu", ref, got)
		}
	})
	for _, job := range []string{"full_train.sql", "lora_train.sql"} {
		t.Run(strings.TrimSuffix(job, ".sql"), func(t *testing.T) {
			path, _ := filepath.Abs(filepath.Join("testdata", job))
			var want [2]string
			for i, dev := range []string{"cpu", "cuda"} {
				lake := filepath.Join(t.TempDir(), "lake")
				cmd := trainChild(t, path, "--device", dev)(lake)
				if dev == "cuda" {
					cmd.Env = append(cmd.Env, mirrorEnv...)
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("--device %s: %v\n%s", dev, err, tail(string(out), 3000))
				}
				checkDevices(t, lake, dev)
				got := [2]string{trainedState(t, lake), rolloutRows(t, lake)}
				if i == 0 {
					want = got
					continue
				}
				for k, what := range []string{"checkpoints", "rollouts and rewards"} {
					if got[k] != want[k] {
						t.Errorf("%s differ on the mirror:\n%s\nwant\n%s", what, tail(got[k], 1500), tail(want[k], 1500))
					}
				}
			}
		})
	}
}
