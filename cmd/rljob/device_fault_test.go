package main

import (
	"fmt"
	"strings"
	"testing"

	"path/filepath"

	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/trainer"
)

// faultyGPU is a fake `--device cuda`: the CPU backend, except that the
// kernel named on fails on the device, which it reports as cudaBackend
// does (Err: the kernel's name and CUDA's error string, no panic).
type faultyGPU struct {
	trainer.Backend
	on  string
	err error
}

func (f *faultyGPU) Name() string { return "cuda: fake GPU, device 0" }
func (f *faultyGPU) Err() error   { return f.err }

func (f *faultyGPU) fail(kernel string) {
	if kernel == f.on && f.err == nil {
		f.err = fmt.Errorf("cuda: %s: an illegal memory access was encountered (code 700)", kernel)
	}
}

func (f *faultyGPU) AttentionDecode(out, q []float32, caches []trainer.KVCache, lens []int32, NH int) {
	f.fail("attention_decode")
	f.Backend.AttentionDecode(out, q, caches, lens, NH)
}

func (f *faultyGPU) AdamWStep(params, grads []float32, o *trainer.AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	f.fail("adamw_step")
	f.Backend.AdamWStep(params, grads, o, off, gradScale, cfg, t, zeroGrads)
}

// TestDeviceFaultFailsStage: a CUDA failure inside a kernel during a
// stage (the rollout's attention decode, the train stage's AdamW) fails
// the run with a message naming the stage, the kernel and CUDA's error,
// and the failing stage commits nothing (its call's parts appear in no
// table; the stages before it in the step committed as usual), and a
// rerun on a healthy device resumes.
func TestDeviceFaultFailsStage(t *testing.T) {
	t.Cleanup(func() { _ = selectDevice("cpu", func(string) string { return "" }) })
	dir := t.TempDir()
	for _, tc := range []struct {
		kernel, stage string
		call          int // the stage's call number in full_train.sql
	}{
		{"attention_decode", "rollout", 2},
		{"adamw_step", "train", 5},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			lake := filepath.Join(dir, tc.kernel)
			args := []string{"run", "testdata/full_train.sql", "--lake", lake, "--seed", "1", "--steps", "1", "--device", "cpu"}
			if code, _, stderr := rljob(t, nil, args...); code != 0 {
				t.Fatalf("rljob %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			before := snapshot(t, lake)
			restore := trainer.OverrideCUDA(func() (trainer.Backend, error) {
				return &faultyGPU{Backend: trainer.CPUBackend(), on: tc.kernel}, nil
			})
			args = []string{"run", "testdata/full_train.sql", "--lake", lake, "--seed", "1", "--steps", "2", "--device", "cuda"}
			code, _, stderr := rljob(t, nil, args...)
			want := "on cuda: fake GPU, device 0 failed: cuda: " + tc.kernel + ": an illegal memory access was encountered (code 700)"
			// A device fault is the machine's, not the job's: exit 1 (a
			// usage error would be 2), from either stage.
			if code != 1 || !strings.Contains(stderr, tc.stage) || !strings.Contains(stderr, want) {
				t.Fatalf("rljob %s: exit %d, want exit 1 naming %s and %q in\n%s", strings.Join(args, " "), code, tc.stage, want, stderr)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(stderr[strings.LastIndex(stderr, "rljob:"):]))
			// The stages before it committed (the step's call records, a
			// rollout before train); the failing call committed nothing:
			// no part of call tc.call in any table.
			part := fmt.Sprintf("/part-%d-", tc.call)
			for k, sum := range snapshot(t, lake) {
				if before[k] != sum && strings.Contains(k, part) {
					t.Errorf("the failed %s call committed %s", tc.stage, k)
				}
			}
			// A rerun on a healthy device resumes and completes the step.
			restore()
			args[len(args)-1] = "cpu"
			if code, _, stderr := rljob(t, nil, args...); code != 0 {
				t.Errorf("rerun rljob %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
		})
	}
}
