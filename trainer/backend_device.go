package trainer

import (
	"fmt"
	"sync"
)

// Devices a run can compute on (rljob run --device, RLJOB_DEVICE).
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// selected is the backend every model made from now on computes with
// (newModelZero, LoadForSampling's model), and the device it runs on.
var selected = struct {
	sync.Mutex
	be     Backend
	device string
}{be: cpu, device: DeviceCPU}

// UseDevice selects the backend of every model made afterwards: "cpu"
// (or "") the host kernels, "cuda" the GPU kernels of kernels/cuda on
// device 0 (cudaBackend, in a binary built with `make build-cuda`). It
// fails, and leaves the selection as it was, when the binary was built
// without CUDA ("built without CUDA: make build-cuda ...") or no GPU opens
// ("no CUDA device: <the driver's error>").
func UseDevice(name string) error {
	selected.Lock()
	be := cpuDevice
	selected.Unlock()
	switch name {
	case "", DeviceCPU:
		name = DeviceCPU
	case DeviceCUDA:
		selected.Lock()
		open := openCUDA
		selected.Unlock()
		b, err := open()
		if err != nil {
			return err
		}
		be = b
	default:
		return fmt.Errorf("unknown device %q: cpu or cuda", name)
	}
	selected.Lock()
	defer selected.Unlock()
	selected.be, selected.device = be, name
	return nil
}

// Device returns the selected device: "cpu" or "cuda" (recorded in each
// stage call record and checkpoint manifest).
func Device() string {
	selected.Lock()
	defer selected.Unlock()
	return selected.device
}

// DeviceDetail names the selected backend, e.g. "cpu" or
// "cuda: NVIDIA H100 80GB HBM3 (sm_90), device 0".
func DeviceDetail() string { return selectedBackend().Name() }

// selectedBackend is the backend new models get.
func selectedBackend() Backend {
	selected.Lock()
	defer selected.Unlock()
	return selected.be
}

// openCUDA opens the CUDA backend for UseDevice: openCUDABackend, unless
// a test replaced it (OverrideCUDA).
var openCUDA = openCUDABackend

// cpuDevice is the backend of device "cpu": the CPU backend, unless a
// test replaced it (OverrideCPUDevice).
var cpuDevice = cpu

// OverrideCPUDevice makes be the backend of device "cpu" (selected now
// and by UseDevice) for the rest of the process. It exists so that a
// test binary can run every stage of its tests on the mirror backend
// (cmd/rljob's RLJOB_TEST_BACKEND=mirror); nothing else calls it.
func OverrideCPUDevice(be Backend) {
	selected.Lock()
	defer selected.Unlock()
	cpuDevice = be
	if selected.device == DeviceCPU {
		selected.be = be
	}
}

// CPUBackend returns the CPU backend (package kernels), e.g. to wrap.
func CPUBackend() Backend { return cpu }

// OverrideCUDA makes UseDevice("cuda") use open instead of opening GPU 0,
// until restore is called. It exists for tests that run stages on a fake
// device (one that fails inside a kernel, say) in any build; nothing else
// calls it.
func OverrideCUDA(open func() (Backend, error)) (restore func()) {
	selected.Lock()
	defer selected.Unlock()
	old := openCUDA
	openCUDA = open
	return func() {
		selected.Lock()
		defer selected.Unlock()
		openCUDA = old
	}
}
