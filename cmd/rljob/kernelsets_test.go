package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// TestPipelineSameBytesOnEveryKernelSet: the arith pipeline — prepare,
// SFT, 3 GRPO steps, eval — run with RLJOB_KERNELS set to each kernel set
// this CPU has (avx512, avx2, go) gives the same rows in every table and
// the same checkpoint bytes. The kernel set changes the speed, never the
// numbers; the trainer's TestTrainBytesAcrossKernelSets checks the same
// under CGO_ENABLED=0 against a golden digest.
func TestPipelineSameBytesOnEveryKernelSet(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the arith pipeline once per kernel set (the go set is slow)")
	}
	sets := kernels.KernelSets()
	var ref map[string]string
	for _, set := range sets {
		got := lakeContent(t, shortArith(t, []string{"RLJOB_KERNELS=" + set}))
		if !strings.Contains(got["checkpoints"], "model.safetensors") {
			t.Fatalf("%s: no checkpoint in the lake:\n%s", set, got["checkpoints"])
		}
		if ref == nil {
			ref = got
			continue
		}
		sameContent(t, "RLJOB_KERNELS="+set+" against "+sets[0], ref, got)
	}
}

// shortArith runs the short arith pipeline (prepare, one SFT epoch, 3 GRPO
// steps, eval) as run k with seed 5 in a new lake, each job a child with
// env and extra arguments, and returns the lake.
func shortArith(t *testing.T, env []string, extra ...string) string {
	t.Helper()
	lake := filepath.Join(t.TempDir(), "lake")
	for _, job := range [][]string{
		{"prepare.sql", "--steps", "1"},
		{"sft.sql", "--steps", "1", "--set", "sft_epochs=1"},
		{"grpo.sql", "--steps", "3"},
		{"eval.sql", "--steps", "1"},
	} {
		args := append([]string{"run", arith + "/" + job[0], "--lake", lake, "--run", "k", "--seed", "5"}, job[1:]...)
		mustChild(t, env, append(args, extra...)...)
	}
	return lake
}

// TestKernelEnvErrors: a bad RLJOB_KERNELS or RLJOB_BF16_DOT is exit 2
// naming the variable, the value and what this CPU can run, before any
// command touches a lake; RLJOB_BF16_DOT=fma shows in rljob version.
func TestKernelEnvErrors(t *testing.T) {
	lake := filepath.Join(t.TempDir(), "lake")
	for _, c := range []struct{ env, val, want string }{
		{"RLJOB_KERNELS", "avx3", `RLJOB_KERNELS: unknown kernel set "avx3"; this CPU can run go`},
		{"RLJOB_BF16_DOT", "amx", `RLJOB_BF16_DOT: unknown bf16 dot product "amx"; this CPU can run fma`},
	} {
		code, _, stderr := rljob(t, map[string]string{c.env: c.val}, "run", arith+"/prepare.sql", "--lake", lake, "--run", "k")
		if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "hint: unset "+c.env) {
			t.Errorf("%s=%s: exit %d, stderr %q; want exit 2 with %q and a hint", c.env, c.val, code, stderr, c.want)
		}
		if _, err := os.Stat(lake); !os.IsNotExist(err) {
			t.Errorf("%s=%s: the lake was created (%v)", c.env, c.val, err)
		}
	}
	code, out, _ := rljob(t, map[string]string{"RLJOB_BF16_DOT": "fma", "RLJOB_KERNELS": "avx2"}, "version")
	if code != 0 || !strings.Contains(out, "kernels avx2, bf16 on FMAs (") {
		t.Errorf("RLJOB_BF16_DOT=fma RLJOB_KERNELS=avx2 rljob version: exit %d, %q", code, out)
	}
	_ = kernels.UseBF16Dot("")
	_ = kernels.UseKernelSet(kernels.KernelSets()[len(kernels.KernelSets())-1])
}
