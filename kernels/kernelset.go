package kernels

import (
	"fmt"
	"os"
	"strings"
)

// Kernel sets. Every kernel with a C implementation (the batch-invariant
// GEMM behind every matmul and attention product, the SwiGLU loops) has
// three: "avx512" (AVX-512F/DQ/VL), "avx2" (AVX2+FMA) and "go" (the Go
// loops, the only one under CGO_ENABLED=0 or off amd64). All three give the
// same bits (TestMatmulSetsBitIdentical, TestSwiGLUCMatchesGo, trainer's
// TestTrainBytesAcrossKernelSets): the set changes the speed, never the
// numbers. The best set the CPU has is used unless RLJOB_KERNELS names
// another.

var kernelSetNames = [...]string{"go", "avx2", "avx512"}

// KernelSets lists the kernel sets this binary can run on this CPU, from
// "go" to the best.
func KernelSets() []string { return append([]string(nil), kernelSetNames[:biDetectedLevel+1]...) }

// KernelSet names the kernel set in use.
func KernelSet() string { return kernelSetNames[biLevel(-1)] }

// UseKernelSet selects the kernel set of every kernel. A name that is not
// a set, or a set this CPU (or a build without cgo) cannot run, is an error
// naming the sets it can run. Not safe while a kernel runs.
func UseKernelSet(name string) error {
	for i, n := range kernelSetNames {
		if n != name {
			continue
		}
		if i > biDetectedLevel {
			return fmt.Errorf("kernel set %q is not available on this CPU%s; it can run %s",
				name, noCgoNote(), strings.Join(KernelSets(), ", "))
		}
		biLevel(i)
		swigluLevel(i)
		return nil
	}
	return fmt.Errorf("unknown kernel set %q; this CPU can run %s", name, strings.Join(KernelSets(), ", "))
}

func noCgoNote() string {
	if biDetectedLevel == 0 && !cgoKernels {
		return " (binary built without cgo)"
	}
	return ""
}

// At start-up RLJOB_KERNELS selects the set, and RLJOB_BF16_DOT bf16's dot
// product (UseBF16Dot), for tests and benchmarks too (the CLI checks both
// itself and exits 2 on a bad value; here a bad value leaves the default).
func init() {
	if v := os.Getenv("RLJOB_KERNELS"); v != "" {
		_ = UseKernelSet(v)
	}
	if v := os.Getenv("RLJOB_BF16_DOT"); v != "" {
		_ = UseBF16Dot(v)
	}
}
