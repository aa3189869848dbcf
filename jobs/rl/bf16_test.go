package rl

import (
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer"
)

// TestBF16GRPO: a run started with init_policy(dtype := 'bf16') keeps
// bf16 through rollout and train (they follow the policy's dtype): every
// checkpoint is HF bf16 (torch_dtype bfloat16, model.safetensors at 2
// bytes a weight, half the fp32 run's) with its fp32 masters in the
// optimizer state, and the rollouts' logprobs equal the train forward's
// bit for bit (first_max_abs_log_ratio exactly 0).
func TestBF16GRPO(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 2 GRPO steps of a tiny model in bf16")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, strings.Replace(initJob, "seed := 7", "seed := 7, dtype := 'bf16'", 1), runOpt{seed: 3})
	full := strings.Replace(grpoJob, trainCall, strings.Replace(trainCall, ");", ", full_state_every := 1);", 1), 1) // full checkpoints: their files are read
	mustRun(t, lake, config, full, runOpt{seed: 3, steps: 2})
	lake32, config32 := testLake(t)
	mustRun(t, lake32, config32, initJob, runOpt{seed: 3})
	fp32 := len(checkpointFiles(t, lake32, 0)[trainer.ModelFile])
	for step := 0; step <= 2; step++ {
		fs := checkpointFiles(t, lake, step)
		if !strings.Contains(string(fs[trainer.ConfigFile]), `"torch_dtype": "bfloat16"`) {
			t.Errorf("step %d: config.json has no torch_dtype bfloat16:\n%s", step, fs[trainer.ConfigFile])
		}
		if n := len(fs[trainer.ModelFile]); n*3 > fp32*2 || !strings.Contains(string(fs[trainer.ModelFile][:200]), `"dtype":"BF16"`) {
			t.Errorf("step %d: model.safetensors %d bytes (fp32 run's %d), want BF16 tensors at about half", step, n, fp32)
		}
		if step == 0 {
			continue
		}
		if !strings.Contains(string(fs[trainer.OptimizerFile]), `"master.`) {
			t.Errorf("step %d: optimizer.safetensors holds no fp32 master weights", step)
		}
		m := metricsOf(t, lake, step)
		if r, ok := m["actor/first_max_abs_log_ratio"]; !ok || r != 0 {
			t.Errorf("step %d: first_max_abs_log_ratio = %v (ok %v), want exactly 0", step, r, ok)
		}
	}
}

// TestDTypeBadArgument: an unknown dtype is refused before the run,
// listing the valid ones.
func TestDTypeBadArgument(t *testing.T) {
	lake, config := testLake(t)
	_, err := runJob(t, lake, config, strings.Replace(initJob, "seed := 7", "seed := 7, dtype := 'fp16'", 1), runOpt{})
	if err == nil || !strings.Contains(err.Error(), `dtype`) || !strings.Contains(err.Error(), `'fp32', 'bf16'`) {
		t.Errorf("err = %v, want an error naming fp32 and bf16", err)
	}
}
