//go:build cuda && cgo

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels/cuda"
)

// TestDeviceOutOfMemory: with the GPU's memory taken (by buffers this test
// allocates), `--device cuda` fails the first stage that allocates, with
// exit 1 and a message naming the stage, the buffer, the sizes and what to
// try; that call commits nothing, and once the memory is free again the
// rerun completes the step.
func TestDeviceOutOfMemory(t *testing.T) {
	skipWithoutGPU(t)
	t.Cleanup(func() { _ = selectDevice("cpu", func(string) string { return "" }) })
	lake := filepath.Join(t.TempDir(), "lake")
	args := []string{"run", "testdata/full_train.sql", "--lake", lake, "--seed", "1", "--steps", "1", "--device", "cpu"}
	if code, _, stderr := rljob(t, nil, args...); code != 0 {
		t.Fatalf("rljob %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	before := snapshot(t, lake)

	d, err := cuda.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	fill := fillDevice(t, d)
	args = []string{"run", "testdata/full_train.sql", "--lake", lake, "--seed", "1", "--steps", "2", "--device", "cuda"}
	code, _, stderr := rljob(t, nil, args...)
	for _, f := range fill {
		f.Free()
	}
	msg := stderr[max(0, strings.LastIndex(stderr, "rljob:")):]
	// An allocation names its buffer, the sizes and a hint. (On a GPU a
	// kernel's launch may be the first to find no memory, for its code:
	// CUDA's error then names the kernel and no buffer.)
	alloc := strings.Contains(msg, "out of GPU memory allocating") && strings.Contains(msg, "use a smaller micro-batch, bf16, or LoRA")
	launch := strings.Contains(msg, "out of memory (code 2)")
	if code != 1 || !strings.Contains(msg, "stage rollout") || !(alloc || launch) {
		t.Fatalf("rljob %s on a full GPU: exit %d, want exit 1 naming stage rollout, the buffer and a hint, in\n%s",
			strings.Join(args, " "), code, stderr)
	}
	t.Logf("exit %d: %s", code, strings.TrimSpace(msg))
	part := fmt.Sprintf("/part-%d-", 2) // the rollout call of step 1
	for k, sum := range snapshot(t, lake) {
		if before[k] != sum && strings.Contains(k, part) {
			t.Errorf("the failed rollout committed %s", k)
		}
	}
	if code, _, stderr := rljob(t, nil, args...); code != 0 {
		t.Errorf("rerun with the GPU's memory free: rljob %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
}

// fillDevice allocates d's free memory but for less than 64 KiB: one large
// buffer (smaller by 1/16 at each refusal), then 64 KiB ones until one is
// refused.
func fillDevice(t *testing.T, d *cuda.Device) []*cuda.Buf {
	t.Helper()
	free, total, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	var bufs []*cuda.Buf
	for n := free - free%(1<<20); n >= 1<<20; n -= n / 16 {
		if b, err := d.Alloc("filler", cuda.U8, int(n)); err == nil {
			bufs = append(bufs, b)
			break
		}
	}
	for range 1 << 16 {
		b, err := d.Alloc("filler", cuda.U8, 64<<10)
		if err != nil {
			break
		}
		bufs = append(bufs, b)
	}
	left, _, _ := d.MemInfo()
	t.Logf("filled %s: %d buffers, %d of %d bytes free", d.Name, len(bufs), left, total)
	return bufs
}
