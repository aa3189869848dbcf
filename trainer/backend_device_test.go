package trainer

import (
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels/cuda"
)

// TestUseDevice: cpu selects the CPU backend; an unknown name is refused;
// cuda either opens the GPU (a cuda build on a GPU machine) or fails
// naming what is missing — "built without CUDA: make build-cuda" in a
// build without the cuda tag, "no CUDA device: <driver error>" in a cuda
// build without a GPU — and leaves the CPU backend selected.
func TestUseDevice(t *testing.T) {
	t.Cleanup(func() { _ = UseDevice(DeviceCPU) })
	if err := UseDevice(DeviceCPU); err != nil || Device() != DeviceCPU || DeviceDetail() != "cpu" {
		t.Fatalf("UseDevice(cpu): %v, device %q (%q)", err, Device(), DeviceDetail())
	}
	if err := UseDevice("gpu"); err == nil || !strings.Contains(err.Error(), `unknown device "gpu"`) {
		t.Errorf("UseDevice(gpu): %v, want an unknown-device error", err)
	}
	err := UseDevice(DeviceCUDA)
	_, gpuErr := cuda.DeviceCount()
	switch {
	case !cuda.Built:
		if err == nil || !strings.Contains(err.Error(), "built without CUDA: make build-cuda") {
			t.Fatalf("UseDevice(cuda) without the cuda tag: %v", err)
		}
	case gpuErr != nil:
		if err == nil || !strings.HasPrefix(err.Error(), "no CUDA device: ") || !strings.Contains(err.Error(), gpuErr.Error()) {
			t.Fatalf("UseDevice(cuda) without a GPU: %v, want \"no CUDA device: %v\"", err, gpuErr)
		}
	default:
		if err != nil || Device() != DeviceCUDA || !strings.HasPrefix(DeviceDetail(), "cuda: ") {
			t.Fatalf("UseDevice(cuda) with a GPU: %v, device %q (%q)", err, Device(), DeviceDetail())
		}
		m := newTestModel(t, testConfig("qwen2", false), 1)
		if m.be.Name() != DeviceDetail() {
			t.Errorf("a model made after UseDevice(cuda) computes on %q", m.be.Name())
		}
		return
	}
	if Device() != DeviceCPU {
		t.Errorf("a failed UseDevice(cuda) left device %q selected", Device())
	}
	if m := newTestModel(t, testConfig("qwen2", false), 1); m.be.Name() != "cpu" {
		t.Errorf("model backend %q after a failed UseDevice(cuda)", m.be.Name())
	}
}
