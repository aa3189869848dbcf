package rl

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// TestKeepLogits: train and sft with keep_logits := true, and left unset
// (kept for full fine-tuning when the budget holds it: TestKeepLogitsAuto),
// write the checkpoint bytes of keep_logits := false. With the default chunk made 4
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
			for _, keep := range []string{", keep_logits := false", ", keep_logits := true", ""} {
				resetCache()
				lake, config := testLake(t)
				mustRun(t, lake, config, strings.Replace(initJob, symbols, tc.symbols, 1), runOpt{seed: 6})
				job := strings.Replace(grpoJob, trainCall, strings.Replace(tc.call, ");", keep+");", 1), 1)
				mustRun(t, lake, config, job, runOpt{seed: 6})
				files = append(files, checkpointFiles(t, lake, 1))
			}
			sameFiles(t, tc.name+" with keep_logits", files[0], files[1])
			sameFiles(t, tc.name+" with keep_logits unset", files[0], files[2])
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

// TestKeepLogitsAuto: keep_logits left unset keeps the logits of full
// fine-tuning (train and sft), not LoRA's, and not where the budget that
// holds the micro-batch cannot hold them too: there the call runs with
// the same micro-batch instead of being refused, as keep_logits := true
// is (TestKeepLogitsBudget).
func TestKeepLogitsAuto(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs GRPO steps of a tiny model")
	}
	defer trainer.SetDefaultHeadRows(trainer.SetDefaultHeadRows(4))
	const kept, notKept = "keeping the logits of", "not keeping the logits"
	sft := "CALL sft(data := 'SELECT prompt, completion FROM this_step', lr := 1e-2, batch_size := 8);"
	for _, tc := range []struct {
		name, call string
		budget     uint64
		want       string // in the log; "" for neither
	}{
		{"train", "CALL train(data := 'train_batch');", 0, kept},
		{"sft", sft, 0, kept},
		{"train bf16", "CALL train(data := 'train_batch', dtype := 'bf16');", 0, kept},
		{"train lora", "CALL train(data := 'train_batch', lora_rank := 4);", 0, ""},
		{"train false", "CALL train(data := 'train_batch', keep_logits := false);", 0, ""},
		{"train tight", "CALL train(data := 'train_batch', micro_batch_size := 1);", 1, notKept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetCache()
			lake, config := testLake(t)
			mustRun(t, lake, config, initJob, runOpt{})
			if tc.budget == 1 {
				tc.budget = budgetWithoutLogits(t, lake)
			}
			jobs.SetMemoryBudget(tc.budget)
			defer jobs.SetMemoryBudget(0)
			var log bytes.Buffer
			job := strings.Replace(grpoJob, trainCall, tc.call, 1)
			mustRun(t, lake, config, job, runOpt{log: &log})
			for _, s := range []string{kept, notKept} {
				if got := strings.Contains(log.String(), s); got != (s == tc.want) {
					t.Errorf("%q in the log: %v, want %v", s, got, s == tc.want)
				}
			}
		})
	}
}

// budgetWithoutLogits is a memory budget that holds grpoJob's train of
// one sequence (11 tokens) of the policy in lake but not its kept logits
// (under SetDefaultHeadRows(4)).
func budgetWithoutLogits(t *testing.T, lake string) uint64 {
	t.Helper()
	c, err := trainer.ParseConfig(checkpointFiles(t, lake, 0)["config.json"])
	if err != nil {
		t.Fatal(err)
	}
	const T = 11
	fixed, per := trainer.TrainMemory(c, nil, T, false)
	logits := trainer.KeepLogitsMemory(c, T)
	if logits == 0 {
		t.Fatal("no kept logits to leave out")
	}
	return fixed + per + logits/2
}

func hintOf(ue *jobs.UsageError) string {
	if ue == nil {
		return ""
	}
	return ue.Hint
}
