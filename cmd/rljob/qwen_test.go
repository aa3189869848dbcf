package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/examples/qwen/prompts"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// TestQwenExampleTiny runs examples/qwen (init.sql, then one GRPO step of
// grpo.sql with prompts from its prompts package) on a tiny qwen2-shaped
// model with a character tokenizer, full fine-tuning and LoRA: the jobs
// and the padding tool work; the 0.5B shape is examples/qwen/step.sh.
func TestQwenExampleTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs two GRPO steps of a tiny model")
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", `{"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
  "tie_word_embeddings": true}`)
	const symbols = "0123456789 .,?$%+-*/=#<>:'\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	tok, err := tokenizer.NewChars(symbols)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "prompts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prompts.Write(f, tok, "../../examples/gsm8k/sample.jsonl", 2, 480); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, lora := range []string{"0", "2"} {
		lake := filepath.Join(dir, "lake"+lora)
		if code, out, stderr := rljob(t, nil, "run", "../../examples/qwen/init.sql", "--lake", lake,
			"--set", "config="+cfg, "--set", "tokenizer=chars:"+symbols); code != 0 {
			t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
		}
		if code, out, stderr := rljob(t, nil, "run", "../../examples/qwen/grpo.sql", "--lake", lake, "--set", "prompts="+f.Name(),
			"--set", "samples=2", "--set", "new_tokens=4", "--set", "lora="+lora, "--set", "lr=1e-3", "--set", "full_state_every=1",
			"--set", "keep_logits="+map[string]string{"0": "false", "2": "1"}[lora]); code != 0 { // KEEP_LOGITS=1 sets 1
			t.Fatalf("grpo (lora %s): exit %d\n%s%s", lora, code, out, stderr)
		}
		ck, _ := filepath.Glob(filepath.Join(lake, "checkpoints", "run=main", "step=1", "*", "*.safetensors"))
		names := strings.Join(ck, " ")
		if want := map[string]string{"0": "model.safetensors", "2": "adapter_model.safetensors"}[lora]; !strings.Contains(names, want) {
			t.Errorf("lora %s: step-1 checkpoint files %s lack %s", lora, names, want)
		}
	}
}
