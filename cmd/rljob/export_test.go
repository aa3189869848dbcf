package main

import (
	"bytes"
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

// TestExportLightCheckpoint: rljob export of a light checkpoint (step 5 of
// testdata/full_train.sql, full_state_every := 3) replays it and writes the
// very model.safetensors a run with a full state at every step wrote.
func TestExportLightCheckpoint(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/full_train.sql")
	if err != nil {
		t.Fatal(err)
	}
	light := filepath.Join(dir, "light")
	full := filepath.Join(dir, "full")
	for lake, job := range map[string]string{
		light: string(src),
		full:  strings.ReplaceAll(string(src), "full_state_every := 3", "full_state_every := 1"),
	} {
		mustChild(t, nil, "run", writeFile(t, dir, filepath.Base(lake)+".sql", job), "--lake", lake, "--run", "c", "--steps", "6", "--seed", "7")
	}
	step5 := func(lake string) string {
		m, _ := filepath.Glob(filepath.Join(lake, "checkpoints", "run=c", "step=5", "part-*"))
		if len(m) != 1 {
			t.Fatalf("%s: step-5 checkpoints %v", lake, m)
		}
		return m[0]
	}
	if _, err := os.Stat(filepath.Join(step5(light), "train_inputs.safetensors")); err != nil {
		t.Fatalf("step 5 of the K = 3 run is not light: %v", err)
	}
	out := filepath.Join(dir, "merged")
	if code, stdout, stderr := rljob(t, nil, "export", step5(light), "--merged", out); code != 0 {
		t.Fatalf("export of a light checkpoint: exit %d\n%s%s", code, stdout, stderr)
	}
	got, _ := os.ReadFile(filepath.Join(out, "model.safetensors"))
	want, _ := os.ReadFile(filepath.Join(step5(full), "model.safetensors"))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("exported weights (%d bytes) differ from the full-state run's step 5 (%d bytes)", len(got), len(want))
	}
}
