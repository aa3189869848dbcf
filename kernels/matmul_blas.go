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
// cgo call costs more than a tiny product).
//
// Threads: OpenBLAS runs single-threaded (openblas_set_num_threads(1), set
// once) and rljob cuts each product into column chunks whose width is a
// fixed function of the shape (blasChunkWidth), computed in parallel by
// parallelFor's goroutines, one cgo call each. Compared with OpenBLAS's own
// pthreads this (1) leaves no OpenBLAS worker spinning after each call —
// measured up to 37 ms of CPU per call, stolen from the Go kernels that run
// between matmuls on a 2-core machine; (2) uses the same cores and the same
// scheduler as every other kernel; (3) makes the bytes independent of
// GOMAXPROCS, since the chunks and each chunk's single-threaded sgemm do not
// depend on it (TestBLASDeterministic). Measured per CPU-second it is on par
// with OpenBLAS's own threading (within noise, better on 2048→768).
//
// Concurrency: OpenBLAS 0.3.21 does not serialise concurrent
// single-threaded calls. A C test (2 pthreads, cblas_sgemm 256×768×768 each,
// openblas_set_num_threads(1) or OPENBLAS_NUM_THREADS=1 alike) runs them in
// half the wall time of two back-to-back calls (≈ 330 vs 165 GFLOP/s, same
// CPU time) whenever the host has two cores free; OpenBLAS's own 2 threads
// got 235–315 GFLOP/s and leave a worker spinning afterwards (the next
// single-threaded calls then cost 2× their wall time in CPU). When two
// MatmulForward calls from separate goroutines take as long as back to back,
// with the same CPU time, it is the shared host: Linux's autogroup
// scheduling (sched_autogroup_enabled=1) gives each busy session an equal
// share of the 2 CPUs, so while one other session is busy, this process gets
// one core however many threads it runs — a pure Go spin on 2 goroutines
// measured 1.00 core then too. Nothing in cgo, GOMAXPROCS or OpenBLAS.
//
// A row's result may still differ in the last bits when the same row is
// computed in a batch of a different size (OpenBLAS's edge kernels depend on
// M); MatmulForwardBI is for callers that need batch invariance.
//
// Kernels: Debian's OpenBLAS is built with DYNAMIC_ARCH and picks its
// kernels from the CPU at load time (Cooperlake, i.e. AVX-512, on the AMD
// EPYC reference machine), unless OPENBLAS_CORETYPE forces a set: the
// reference environment exports OPENBLAS_CORETYPE=Haswell (AVX2), which
// runs about 2× slower there. BLASName reports the kernels in use.

const blasEnabled = true

// blasMinWork is the B·C·OC size from which OpenBLAS is used. Measured
// (forward + backward, CPU time): OpenBLAS is already 2.4× faster than the
// Go kernel at 8×32×32 and 25× at 16×64×64, so only tiny products stay in Go.
const blasMinWork = 1 << 12

var blasInit sync.Once

func blasSetup() {
	blasInit.Do(func() {
		C.openblas_set_num_threads(1)
	})
}

func blasName() string {
	blasSetup()
	cfg := strings.TrimSpace(C.GoString(C.openblas_get_config()))
	return fmt.Sprintf("openblas (%s; kernels %s; single-threaded calls on %d goroutines)",
		cfg, C.GoString(C.rljob_blas_core()), runtime.GOMAXPROCS(0))
}

func fptr(x []float32) *C.float { return (*C.float)(unsafe.Pointer(&x[0])) }

// sgemm is row-major c (M,N) = op(a)·op(b) + beta·c, one single-threaded
// OpenBLAS call (safe to run concurrently on distinct outputs).
func sgemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	blasSetup()
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(M), C.blasint(N), C.blasint(K),
		1, fptr(a), C.blasint(lda), fptr(b), C.blasint(ldb), C.float(beta), fptr(c), C.blasint(ldc))
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

// blasChunkWidth returns the number of output columns per sgemm call when
// total columns of a product of M rows and inner size K are cut into chunks.
// It depends on the shape only (never on GOMAXPROCS), so the bytes do not
// either. The chunks aim at blasChunkTarget columns, in an even number so
// that two cores get equal shares; each call does at least about 2M
// multiply-adds (a one-row decode step is not all call overhead); widths are
// multiples of 64 and at least 128. Measured single-threaded (cblas_sgemm,
// Cooperlake kernels, this repo's shapes): 128-column chunks run 5–12% below
// one whole call (up to 25% for the dweight product, whose A panel is
// re-packed per call), 384–512-column ones within 0–3% of it.
func blasChunkWidth(total, M, K int) int {
	wmin := (1 << 21) / max(1, M*K)
	wmin = max(128, (wmin+63)/64*64)
	n := (total + blasChunkTarget - 1) / blasChunkTarget
	if n > 1 && n%2 == 1 {
		n++
	}
	w := (total + n - 1) / n
	w = (w + 63) / 64 * 64
	return max(wmin, w)
}

// blasChunkTarget is the preferred chunk width of blasChunkWidth.
const blasChunkTarget = 512

// chunks runs f(j0, n) over [0, total) in pieces of width w, in parallel.
func chunks(total, w int, f func(j0, n int)) {
	parallelFor((total+w-1)/w, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			j0 := c * w
			f(j0, min(w, total-j0))
		}
	})
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
	// out (B,OC) = inp (B,C) · weightᵀ, by chunks of OC (rows o0.. of weight)
	chunks(OC, blasChunkWidth(OC, B, C), func(o0, n int) {
		sgemm(false, true, B, n, C, inp, C, weight[o0*C:], C, beta, out[o0:], OC)
	})
}

func matmulBackwardBLAS(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	dout, inp, weight = dout[:B*OC], inp[:B*C], weight[:OC*C]
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
	}
	if dinp != nil {
		// dinp (B,C) += dout (B,OC) · weight (OC,C), by chunks of C columns
		dinp = dinp[:B*C]
		chunks(C, blasChunkWidth(C, B, OC), func(c0, n int) {
			sgemm(false, false, B, n, OC, dout, OC, weight[c0:], C, 1, dinp[c0:], C)
		})
	}
	if dweight != nil {
		// dweight (OC,C) += doutᵀ (OC,B) · inp (B,C), by chunks of OC rows
		dweight = dweight[:OC*C]
		chunks(OC, blasChunkWidth(OC, C, B), func(o0, n int) {
			sgemm(true, false, n, C, B, dout[o0:], OC, inp, C, 1, dweight[o0*C:], C)
		})
	}
}
