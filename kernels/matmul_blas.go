//go:build openblas

package kernels

/*
#cgo LDFLAGS: -lopenblas -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <cblas.h>

// gotoblas_corename is exported by OpenBLAS builds with DYNAMIC_ARCH
// (Debian's); it is looked up with dlsym so that a library built for one CPU
// (without it) links too.
typedef char *(*rljob_name_fn)(void);

// rljob_blas_core returns the name of the kernel set OpenBLAS uses, or "".
static const char *rljob_blas_core(void) {
	rljob_name_fn name = (rljob_name_fn)dlsym(RTLD_DEFAULT, "gotoblas_corename");
	return name ? name() : "";
}

*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Built with the openblas tag: matmuls of at least blasMinWork
// multiply-adds go to cblas_sgemm, smaller ones to the pure-Go kernel (a
// cgo call and OpenBLAS's thread wake-up cost more than a tiny product).
//
// Threads: OpenBLAS is set, once, to GOMAXPROCS threads (the machine's
// cores by default; 2 on the reference machine), so Go and OpenBLAS use the
// same cores and never both at once (matmuls are not overlapped with other
// kernels).
//
// Determinism: the same inputs with the same thread count and kernel set
// give the same bytes (TestBLASDeterministic). Across thread counts, and for
// a row computed alone versus inside a larger batch, OpenBLAS 0.3.21 may
// differ in the last bits (its edge kernels depend on how M and N are split;
// the test logs what it sees). Callers that need results independent of
// threads and batch composition use MatmulForwardExact.
//
// Kernels: Debian's OpenBLAS is built with DYNAMIC_ARCH and picks its
// kernels from the CPU at load time (Cooperlake, i.e. AVX-512, on the AMD
// EPYC reference machine), unless OPENBLAS_CORETYPE forces a set: the
// reference environment exports OPENBLAS_CORETYPE=Haswell (AVX2), which
// halves sgemm throughput there. BLASName reports the kernels in use.
//
// Calls are serialised by a mutex: the goroutines of the trainer never run
// two matmuls at once, and OpenBLAS's pthread build must not be entered
// concurrently from several threads.

const blasEnabled = true

// blasMinWork is the B·C·OC size from which OpenBLAS is used. Measured
// (forward + backward, CPU time): OpenBLAS is already 2.4× faster than the
// Go kernel at 8×32×32 and 25× at 16×64×64, so only tiny products stay in Go.
const blasMinWork = 1 << 12

var (
	blasMu      sync.Mutex
	blasInit    sync.Once
	blasThreads int
)

func blasSetup() {
	blasInit.Do(func() {
		blasThreads = runtime.GOMAXPROCS(0)
		C.openblas_set_num_threads(C.int(blasThreads))
	})
}

// setBLASThreads changes OpenBLAS's thread count (tests only).
func setBLASThreads(n int) {
	blasSetup()
	blasMu.Lock()
	defer blasMu.Unlock()
	blasThreads = n
	C.openblas_set_num_threads(C.int(n))
}

func blasName() string {
	blasSetup()
	cfg := strings.TrimSpace(C.GoString(C.openblas_get_config()))
	return fmt.Sprintf("openblas (%s; kernels %s; %d threads)", cfg, C.GoString(C.rljob_blas_core()), blasThreads)
}

func fptr(x []float32) *C.float { return (*C.float)(unsafe.Pointer(&x[0])) }

// sgemm is row-major c (M,N) = alpha·op(a)·op(b) + beta·c.
func sgemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	blasSetup()
	blasMu.Lock()
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(M), C.blasint(N), C.blasint(K),
		1, fptr(a), C.blasint(lda), fptr(b), C.blasint(ldb), C.float(beta), fptr(c), C.blasint(ldc))
	blasMu.Unlock()
}

func useBLAS(B, C, OC int) bool { return B > 0 && C > 0 && OC > 0 && B*C*OC >= blasMinWork }

func matmulForward(out, inp, weight, bias []float32, B, C, OC int) {
	if !useBLAS(B, C, OC) {
		matmulForwardGo(out, inp, weight, bias, B, C, OC)
		return
	}
	matmulForwardBLAS(out, inp, weight, bias, B, C, OC)
}

func matmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	if !useBLAS(B, C, OC) {
		matmulBackwardGo(dinp, dweight, dbias, dout, inp, weight, B, C, OC)
		return
	}
	matmulBackwardBLAS(dinp, dweight, dbias, dout, inp, weight, B, C, OC)
}

func matmulForwardBLAS(out, inp, weight, bias []float32, B, C, OC int) {
	out, inp, weight = out[:B*OC], inp[:B*C], weight[:OC*C]
	beta := float32(0)
	if bias != nil {
		bias = bias[:OC]
		for b := 0; b < B; b++ {
			copy(out[b*OC:(b+1)*OC], bias)
		}
		beta = 1
	}
	// out (B,OC) = inp (B,C) · weightᵀ
	sgemm(false, true, B, OC, C, inp, C, weight, C, beta, out, OC)
}

func matmulBackwardBLAS(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	dout, inp, weight = dout[:B*OC], inp[:B*C], weight[:OC*C]
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
	}
	if dinp != nil {
		// dinp (B,C) += dout (B,OC) · weight (OC,C)
		sgemm(false, false, B, C, OC, dout, OC, weight, C, 1, dinp[:B*C], C)
	}
	if dweight != nil {
		// dweight (OC,C) += doutᵀ (OC,B) · inp (B,C)
		sgemm(true, false, OC, C, B, dout, OC, inp, C, 1, dweight[:OC*C], C)
	}
}
