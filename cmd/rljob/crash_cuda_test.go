//go:build cuda && cgo

package main

import "testing"

// TestCrashSafetyCUDA: resume after kill -9 on the GPU path (issue 18).
// The training jobs (full fine-tuning and LoRA) run with --device cuda,
// uninterrupted, then SIGKILLed once at each kind of moment — inside the
// commit of a step's rollouts sampled on the GPU, before, inside and after
// a train checkpoint's commit, after a light checkpoint that the rerun
// replays on the GPU (deviceKills lists them) — and rerun with
// --device cuda: each rerun must give the uninterrupted cuda run's
// checkpoint files byte for byte and its rollout tokens, log-probs and
// rewards. TestCrashSafetyDeviceKills runs the same kills on the CPU.
// Skips without a GPU; RLJOB_REQUIRE_CUDA=1 turns the skip into a failure.
func TestCrashSafetyCUDA(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test of training jobs on the GPU: 10 children killed and rerun; skipped under -short")
	}
	skipWithoutGPU(t)
	deviceKills(t, "cuda", "full_train.sql", "lora_train.sql")
}
