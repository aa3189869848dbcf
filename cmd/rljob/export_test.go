package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loraInitJob starts a tiny policy; loraCLIJob makes a GRPO step with
// LoRA adapters.
const (
	loraInitJob = `CALL init_policy(config := 'tiny', tokenizer := 'chars:0123456789+=', seed := 1);`
	loraCLIJob  = `CREATE OR REPLACE TABLE batch AS SELECT 'p' || i AS prompt_id, CAST(i AS VARCHAR) || '+1=' AS prompt, CAST(i + 1 AS VARCHAR) AS answer FROM range(4) t(i);
CALL rollout(prompts := 'batch', n := 2, max_new_tokens := 3);
CALL reward(verifier := 'regex', pattern := '^(.)');
CREATE OR REPLACE TABLE tb AS SELECT * FROM grpo_advantages('this_step_scored');
CALL train(data := 'tb', lr := 1e-2, lora_rank := 2, lora_targets := 'q,v');
`
)

// TestExportAndMemoryFlag: --memory is checked (exit 2 on a bad size); a
// LoRA run's checkpoint exports as a PEFT adapter and as a merged model;
// --peft of a full checkpoint is exit 2.
func TestExportAndMemoryFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a GRPO step")
	}
	dir := t.TempDir()
	job := writeFile(t, dir, "job.sql", loraCLIJob)
	lake := filepath.Join(dir, "lake")
	if code, _, stderr := rljob(t, nil, "run", job, "--lake", lake, "--memory", "lots"); code != 2 || !strings.Contains(stderr, "--memory") {
		t.Fatalf("--memory lots: exit %d\n%s", code, stderr)
	}
	initJob := writeFile(t, dir, "init.sql", loraInitJob)
	if code, out, stderr := rljob(t, nil, "run", initJob, "--lake", lake); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := rljob(t, nil, "run", job, "--lake", lake, "--memory", "2GiB"); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, stderr)
	}
	ck, err := filepath.Glob(filepath.Join(lake, "checkpoints", "run=main", "step=1", "*"))
	if err != nil || len(ck) != 1 {
		t.Fatalf("step-1 checkpoint: %v %v", ck, err)
	}
	peft := filepath.Join(dir, "peft")
	if code, out, stderr := rljob(t, nil, "export", ck[0], "--peft", peft, "--base", "my/base"); code != 0 {
		t.Fatalf("export --peft: exit %d\n%s%s", code, out, stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(peft, "adapter_config.json"))
	if !strings.Contains(string(cfg), `"base_model_name_or_path": "my/base"`) || !strings.Contains(string(cfg), `"v_proj"`) {
		t.Errorf("adapter_config.json:\n%s", cfg)
	}
	merged := filepath.Join(dir, "merged")
	if code, out, stderr := rljob(t, nil, "export", ck[0], "--merged", merged); code != 0 {
		t.Fatalf("export --merged: exit %d\n%s%s", code, out, stderr)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Errorf("merged export lacks %s", f)
		}
	}
	base, _ := filepath.Glob(filepath.Join(lake, "checkpoints", "run=main", "step=0", "*"))
	if code, _, stderr := rljob(t, nil, "export", base[0], "--peft", filepath.Join(dir, "p2")); code != 2 || !strings.Contains(stderr, "no LoRA adapters") {
		t.Errorf("export --peft of a full checkpoint: exit %d\n%s", code, stderr)
	}
}
