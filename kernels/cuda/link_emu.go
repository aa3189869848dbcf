//go:build cuda && cgo && cudaemu && asan

package cuda

// The kernels compiled by g++ against the CUDA emulator (kernels/cuda/emu,
// make cuda-emu-lib): every kernel runs on the CPU, each CUDA thread a
// fiber, so the CUDA tests run on a machine without a GPU. The library
// is compiled with AddressSanitizer: build with go -asan (emu_asan.go).

/*
#cgo LDFLAGS: -L${SRCDIR}/lib -lrljobcuda_emu -lstdc++ -lm -lpthread
*/
import "C"

// CublasLinked says how cuBLAS is linked.
const CublasLinked = "emulated"
