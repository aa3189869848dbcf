//go:build cgo && amd64

package kernels

/*
#cgo LDFLAGS: -lm
#include <math.h>
#include <string.h>

#pragma GCC optimize("O3", "fp-contract=off", "no-math-errno", "no-trapping-math")

typedef struct { float sc, b1, b2, eps, step, ibc2, decay; } rljob_adamw_k;

// adamwRangeGo's statements in the same order, without FMA contraction
// (fp-contract=off, and no fma target). gi·sc is done even for sc = 1
// (the Go loop skips it): x·1 = x for every finite x, and a gradient with
// a non-finite value never gets here (the norm check). sqrtf is correctly
// rounded, as float32(math.Sqrt(float64(v))) is.
#define RLJOB_ADAMW(SUFFIX, ATTR) \
ATTR static void adamw_##SUFFIX(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, long n, const rljob_adamw_k *k) { \
	const float sc = k->sc, b1 = k->b1, b2 = k->b2, eps = k->eps, step = k->step, ibc2 = k->ibc2, decay = k->decay; \
	const float c1 = 1 - b1, c2 = 1 - b2; \
	for (long i = 0; i < n; i++) { \
		float gi = g[i] * sc; \
		float mi = b1 * m[i] + c1 * gi; \
		float vi = b2 * v[i] + c2 * gi * gi; \
		m[i] = mi; \
		v[i] = vi; \
		float denom = sqrtf(vi) * ibc2 + eps; \
		p[i] = p[i] * decay - step * mi / denom; \
	} \
}

RLJOB_ADAMW(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2"))))
RLJOB_ADAMW(avx2, __attribute__((target("avx2"))))

static void rljob_adamw(int level, float *p, float *m, float *v, float *g, long n, const rljob_adamw_k *k, int zero) {
	if (level >= 2) {
		adamw_avx512(p, m, v, g, n, k);
	} else {
		adamw_avx2(p, m, v, g, n, k);
	}
	if (zero) {
		memset(g, 0, (size_t)n * sizeof(float));
	}
}
*/
import "C"

import "unsafe"

// With cgo on amd64 AdamW's element loop runs in C for the AVX-512 and
// AVX2 kernel sets (the Go loop for "go"): it was a third of a 0.5B-shape
// bf16 training step, bound by its division and square root per element,
// which the vector loops do 16 or 8 at a time.
func adamwRange(p, m, v, g []float32, k *adamwConsts, zero bool) {
	n := len(p)
	if n == 0 || biCurLevel == 0 {
		adamwRangeGo(p, m, v, g, k, zero)
		return
	}
	m, v, g = m[:n], v[:n], g[:n]
	ck := C.rljob_adamw_k{sc: C.float(k.sc), b1: C.float(k.b1), b2: C.float(k.b2), eps: C.float(k.eps),
		step: C.float(k.stepSize), ibc2: C.float(k.invBc2), decay: C.float(k.decay)}
	z := C.int(0)
	if zero {
		z = 1
	}
	C.rljob_adamw(C.int(biCurLevel), (*C.float)(unsafe.Pointer(&p[0])), (*C.float)(unsafe.Pointer(&m[0])),
		(*C.float)(unsafe.Pointer(&v[0])), (*C.float)(unsafe.Pointer(&g[0])), C.long(n), &ck, z)
	yieldAfter(n * yieldElem)
}
