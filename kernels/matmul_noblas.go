//go:build !openblas

package kernels

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// Built without the openblas tag: every matmul runs the pure-Go kernel.

const blasEnabled = false

func blasName() string { return "pure-go" }

// warnFlops is the size (B·C·OC) from which a matmul counts as large enough
// to warn that BLAS is missing.
const warnFlops = 1 << 22

var (
	warnOnce sync.Once
	warnOut  io.Writer = os.Stderr // tests capture it
)

func warnNoBLAS(B, C, OC int) {
	if B*C*OC >= warnFlops {
		warnOnce.Do(func() {
			fmt.Fprintln(warnOut, "rljob: OpenBLAS not built in (libopenblas-dev missing or build tag openblas unset); using pure-Go matmul")
		})
	}
}

func matmulForward(out, inp, weight, bias []float32, B, C, OC int) {
	warnNoBLAS(B, C, OC)
	matmulForwardGo(out, inp, weight, bias, B, C, OC)
}

func matmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	warnNoBLAS(B, C, OC)
	matmulBackwardGo(dinp, dweight, dbias, dout, inp, weight, B, C, OC)
}

// Without OpenBLAS attention's backward always runs the scalar loops of attention.go.
func attnUseGEMM(T int) bool { return false }

func attnBackwardGEMM(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	panic("kernels: attnBackwardGEMM without openblas")
}

func swigluFwdRange(out, gate, up []float32) { swigluFwdRangeGo(out, gate, up) }
func swigluBwdRange(dgate, dup, dout, gate, up []float32) {
	swigluBwdRangeGo(dgate, dup, dout, gate, up)
}
