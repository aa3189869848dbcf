//go:build cgo && amd64

package kernels

/*
#include <string.h>

#pragma GCC optimize("O3")

// packTStrided's loop (bigemm.go) in C: a copy, so the bits are the Go
// loop's; memcpy of a constant 64 bytes compiles to vector moves instead
// of Go's runtime.memmove call per 16-float row of a panel.
static void rljob_packt(float *data, const float *wt, long ldt, long K, long N, long p0, long p1, long krows) {
	for (long k0 = 0; k0 < K; k0 += krows) {
		long k1 = k0 + krows < K ? k0 + krows : K;
		for (long p = p0; p < p1; p++) {
			float *dst = data + p * 16 * K;
			long n0 = p * 16, w = N - n0 < 16 ? N - n0 : 16;
			if (w == 16) {
				for (long k = k0; k < k1; k++) memcpy(dst + k * 16, wt + k * ldt + n0, 64);
				continue;
			}
			for (long k = k0; k < k1; k++) {
				memcpy(dst + k * 16, wt + k * ldt + n0, (size_t)w * 4);
				memset(dst + k * 16 + w, 0, (size_t)(16 - w) * 4);
			}
		}
	}
}
*/
import "C"

import "unsafe"

// packTRange packs panels [p0, p1) of wt (K, N), rows ldt apart, into
// data, packTRows rows of wt at a time: in C for the avx512 and avx2 sets,
// the Go loop for "go" (a copy either way: the same bits).
func packTRange(data, wt []float32, ldt, K, N, p0, p1 int) {
	if biCurLevel == 0 || p0 >= p1 {
		packTRangeGo(data, wt, ldt, K, N, p0, p1)
		return
	}
	_ = data[p1*biPanel*K-1]
	_ = wt[(K-1)*ldt+N-1]
	C.rljob_packt((*C.float)(unsafe.Pointer(&data[0])), (*C.float)(unsafe.Pointer(&wt[0])),
		C.long(ldt), C.long(K), C.long(N), C.long(p0), C.long(p1), C.long(packTRows))
	yieldAfter((p1 - p0) * biPanel * K * yieldElem)
}
