package rl

import (
	"errors"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// TestKeepLogits: train and sft with keep_logits := true write the
// checkpoint bytes of the default head. With the default chunk made 4
// rows (a small vocabulary's would hold every row, as Qwen2.5's does
// not), the default head computes each micro-batch's logits again in the
// backward: by slices of the vocabulary on the CPU, as on Qwen2.5, once
// the vocabulary holds a slice of 16 ids for every row of the chunk
// buffers (here 264 ids: the arithmetic symbols and 248 Cyrillic
// letters), else chunk of rows by chunk. keep_logits reuses the
// forward's. fp32, bf16 and LoRA, the RL loss with entropy and SFT's,
// both forms. (Checked: a perturbed recomputation in either form fails it.)
func TestKeepLogits(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs 12 GRPO steps of a tiny model")
	}
	defer trainer.SetDefaultHeadRows(trainer.SetDefaultHeadRows(4))
	big := symbols
	for r := rune(0x400); r < 0x400+248; r++ {
		big += string(r)
	}
	sft := "CALL sft(data := 'SELECT prompt, completion FROM this_step', lr := 1e-2, batch_size := 8, micro_batch_size := 3, epochs := 2, full_state_every := 1);"
	for _, tc := range []struct{ name, call, symbols string }{
		{"train", "CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28, entropy_coef := 0.01, micro_batch_size := 5, full_state_every := 1);", big},
		{"train bf16", "CALL train(data := 'train_batch', lr := 1e-2, dtype := 'bf16', micro_batch_size := 4, full_state_every := 1);", big},
		{"sft", sft, big},
		{"train lora", "CALL train(data := 'train_batch', lr := 1e-2, lora_rank := 4, micro_batch_size := 5, full_state_every := 1);", big},
		{"train, rows", "CALL train(data := 'train_batch', lr := 1e-2, entropy_coef := 0.01, micro_batch_size := 5, full_state_every := 1);", symbols},
		{"sft, rows", sft, symbols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []map[string][]byte
			for _, keep := range []string{"", ", keep_logits := true"} {
				resetCache()
				lake, config := testLake(t)
				mustRun(t, lake, config, strings.Replace(initJob, symbols, tc.symbols, 1), runOpt{seed: 6})
				job := strings.Replace(grpoJob, trainCall, strings.Replace(tc.call, ");", keep+");", 1), 1)
				mustRun(t, lake, config, job, runOpt{seed: 6})
				files = append(files, checkpointFiles(t, lake, 1))
			}
			sameFiles(t, tc.name+" with keep_logits", files[0], files[1])
		})
	}
}

// TestKeepLogitsBudget: a budget that the kept logits overflow refuses
// the call before any work, counting them and saying to drop the option.
func TestKeepLogitsBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a GRPO step")
	}
	defer trainer.SetDefaultHeadRows(trainer.SetDefaultHeadRows(4))
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	jobs.SetMemoryBudget(200 << 10)
	defer jobs.SetMemoryBudget(0)
	job := strings.Replace(grpoJob, trainCall, "CALL train(data := 'train_batch', keep_logits := true);", 1)
	_, err := runJob(t, lake, config, job, runOpt{})
	var ue *jobs.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "+ the kept logits") || !strings.Contains(ue.Hint, "drop keep_logits") {
		t.Fatalf("err = %v (hint %q)", err, hintOf(ue))
	}
	if got := query(t, lake, "SELECT count(*) FROM metrics WHERE name = 'actor/pg_loss'"); !equal(got, []string{"0"}) {
		t.Errorf("a refused train committed metrics: %v", got)
	}
}

func hintOf(ue *jobs.UsageError) string {
	if ue == nil {
		return ""
	}
	return ue.Hint
}
