// Package cuda holds rljob's CUDA kernels: one .cu file per kernel family
// of package kernels (csrc/), built by `make build-cuda` into
// lib/librljobcuda.a with cuBLAS and the CUDA runtime linked statically, and
// a Go API over device buffers shaped so that a trainer backend can wrap it
// one method per kernel (docs/cuda.md).
//
// The package builds in two ways:
//
//   - with the build tags cuda and cgo (make build-cuda): Open returns a
//     Device whose methods launch the kernels;
//   - otherwise (plain make build): Open and DeviceCount return ErrNoCUDA,
//     "built without CUDA (make build-cuda)", and nothing else exists.
//
// Conventions follow kernels/api.go: outputs, then inputs, then sizes, then
// hyper-parameters; forward outputs are written, backward gradients are
// accumulated (+=). Launches are asynchronous on the device's default
// stream: a kernel's launch error comes back from its method, an error
// inside a kernel (and a device-side check, such as a token id out of
// range) from the next Sync, Download or GradNorm.
//
// Bits: every kernel except the cuBLAS GEMMs repeats the CPU kernel's
// float operations in the CPU kernel's order (with -fmad=false, fmaf where
// the CPU fuses, Go's math.Exp and math.Log ported from their amd64
// assembly, kernels/expf.go's polynomial), so its output equals package
// kernels' bit for bit; docs/cuda.md lists where that does not hold.
package cuda

import (
	"errors"
	"fmt"
)

// ErrNoCUDA is what every entry point returns in a build without the cuda
// tag (or without cgo).
var ErrNoCUDA = errors.New("built without CUDA (make build-cuda)")

// Error is a failed CUDA call: the kernel (or runtime call) and CUDA's
// error string.
type Error struct {
	Kernel string // e.g. "rmsnorm_forward", "cudaMalloc"
	Code   int    // cudaError_t, or 20000 + cublasStatus_t
	Msg    string // cudaGetErrorString / the cuBLAS status name
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (code %d)", e.Kernel, e.Msg, e.Code)
}
