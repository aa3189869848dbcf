//go:build cuda && cgo

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels/cuda"
)

// TestDeviceCUDARollout: testdata/full_train.sql for 3 steps (init, then
// rollout + reward + train twice) with --device cpu and with --device cuda
// samples the same tokens at steps 1 and 2 — step 2 samples from the policy
// that step 1 trained, on the GPU in the cuda run — and the cuda run
// records "device": "cuda". The log-probs are compared too (logged). Skips
// without a GPU; RLJOB_REQUIRE_CUDA=1 turns the skip into a failure.
func TestDeviceCUDARollout(t *testing.T) {
	skipWithoutGPU(t)
	t.Cleanup(func() { _ = selectDevice("cpu", func(string) string { return "" }) }) // later in-process tests: cpu
	dir := t.TempDir()
	query := func(lake, cols string) string {
		q := "SELECT step, prompt_id, sample_idx, " + cols + " FROM rollouts ORDER BY step, prompt_id, sample_idx"
		code, out, stderr := rljob(t, nil, "sql", "--lake", lake, "--format", "csv", q)
		if code != 0 {
			t.Fatalf("rljob sql %s: exit %d\n%s", q, code, stderr)
		}
		return out
	}
	var tokens, logprobs [2]string
	for i, dev := range []string{"cpu", "cuda"} {
		lake := filepath.Join(dir, dev)
		args := []string{"run", "testdata/full_train.sql", "--lake", lake, "--steps", "3", "--seed", "1", "--device", dev}
		if code, _, stderr := rljob(t, nil, args...); code != 0 {
			t.Fatalf("rljob %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
		tokens[i], logprobs[i] = query(lake, "completion_tokens"), query(lake, "logprobs")
		for _, table := range []string{"calls", "checkpoints"} {
			for unit, d := range manifestDevices(t, filepath.Join(lake, table)) {
				if d != dev {
					t.Errorf("%s: device %v, want %s", unit, d, dev)
				}
			}
		}
	}
	if strings.Count(tokens[0], "\n") < 9 {
		t.Fatalf("too few rollouts to compare:\n%s", tokens[0])
	}
	if tokens[0] != tokens[1] {
		t.Errorf("--device cuda sampled other tokens than --device cpu:\ncpu:\n%s\ncuda:\n%s", tokens[0], tokens[1])
	}
	t.Logf("rollout log-probs equal (as text): %v", logprobs[0] == logprobs[1])
}

// skipWithoutGPU skips t, saying why, when no GPU opens; with
// RLJOB_REQUIRE_CUDA=1 that is a failure instead.
func skipWithoutGPU(t *testing.T) {
	t.Helper()
	if _, err := cuda.DeviceCount(); err != nil {
		if os.Getenv("RLJOB_REQUIRE_CUDA") == "1" {
			t.Fatalf("RLJOB_REQUIRE_CUDA=1 but no usable GPU: %v", err)
		}
		t.Skipf("no CUDA device (%v); RLJOB_REQUIRE_CUDA=1 turns this skip into a failure", err)
	}
}
