package rl

import (
	"errors"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// loraJob is grpoJob with LoRA adapters on q and v (rank 4) and a KL term
// to the step-0 base, writing the full state (adapters and moments) at
// every step.
var loraJob = strings.Replace(grpoJob, "CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28);",
	"CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28, lora_rank := 4, lora_targets := 'q,v,down', ref := 'step=0', kl_coef := 0.01, full_state_every := 1);", 1)

// TestLoRAGRPO: two GRPO steps with LoRA. Step 1 trains fresh adapters on
// the step-0 base, step 2 continues them (its rollouts sample with the
// adapters); every checkpoint after step 0 holds adapters and their moments
// only, naming the base; the rollouts' logprobs equal the train forward's
// bit for bit (first_max_abs_log_ratio exactly 0); a rerun of the same
// seed writes the same bytes.
func TestLoRAGRPO(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 2 GRPO steps of a tiny model with LoRA")
	}
	var first map[string][]byte
	for rep := range 2 {
		lake, config := testLake(t)
		mustRun(t, lake, config, initJob, runOpt{seed: 3})
		mustRun(t, lake, config, loraJob, runOpt{seed: 3, steps: 2})
		for step := 1; step <= 2; step++ {
			fs := checkpointFiles(t, lake, step)
			if fs[trainer.ModelFile] != nil || fs[trainer.AdapterModelFile] == nil || fs[trainer.AdapterConfigFile] == nil || fs[trainer.OptimizerFile] == nil {
				t.Fatalf("step %d: LoRA checkpoint files %v", step, keys(fs))
			}
			if !strings.Contains(string(fs[trainer.AdapterBaseFile]), "step=0") {
				t.Errorf("step %d: adapter_base.json does not name the step-0 base:\n%s", step, fs[trainer.AdapterBaseFile])
			}
			base := len(checkpointFiles(t, lake, 0)[trainer.ModelFile])
			if n := len(fs[trainer.AdapterModelFile]) + len(fs[trainer.OptimizerFile]); n*3 > base { // rank 4 on hidden 32: a third; on 0.5B about 1%
				t.Errorf("step %d: adapters + moments %d bytes, base %d", step, n, base)
			}
			m := metricsOf(t, lake, step)
			if r, ok := m["actor/first_max_abs_log_ratio"]; !ok || r != 0 {
				t.Errorf("step %d: first_max_abs_log_ratio = %v (ok %v), want exactly 0", step, r, ok)
			}
		}
		if got := query(t, lake, "SELECT count(DISTINCT policy_step) FROM rollouts WHERE step = 2 AND policy_step = 1"); !equal(got, []string{"1"}) {
			t.Errorf("step 2 rollouts not sampled by the step-1 adapters: %v", got)
		}
		fs := checkpointFiles(t, lake, 2)
		if rep == 0 {
			first = fs
		} else {
			sameFiles(t, "LoRA rerun", first, fs)
		}
	}
}

// TestLoRABadArguments: LoRA arguments out of range or naming unknown
// modules are usage errors listing the valid names.
func TestLoRABadArguments(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	for _, tc := range []struct{ job, want string }{
		{`CALL train(data := 'x', lora_rank := 8, lora_targets := 'q,attn');`, "q, k, v, o, gate, up, down"},
		{`CALL train(data := 'x', lora_rank := -1);`, "lora_rank -1 out of range"},
		{`CALL sft(data := 'x', lora_rank := 8, lora_dropout := 0.1);`, "only 0"},
		{`CALL sft(data := 'x', lora_rank := 8, lora_alpha := 0);`, "lora_alpha"},
	} {
		_, err := runJob(t, lake, config, tc.job, runOpt{})
		var ue *jobs.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a usage error mentioning %q", tc.job, err, tc.want)
		}
	}
}

// TestMemoryBudgetRefuses: a budget too small for one sequence refuses the
// train call before any work, naming the estimate and the budget; a fitting
// budget picks the micro-batch.
func TestMemoryBudgetRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a GRPO step")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	jobs.SetMemoryBudget(200 << 10) // rollout needs ~16 KiB, train ~0.5 MiB
	defer jobs.SetMemoryBudget(0)
	_, err := runJob(t, lake, config, grpoJob, runOpt{})
	var ue *jobs.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "more than the memory budget 200.0 KiB") || !strings.Contains(err.Error(), "need about") {
		t.Fatalf("err = %v", err)
	}
	if got := query(t, lake, "SELECT count(*) FROM metrics WHERE name = 'actor/pg_loss'"); !equal(got, []string{"0"}) {
		t.Errorf("a refused train committed metrics: %v", got)
	}
}
