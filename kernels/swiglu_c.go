//go:build cgo && amd64

package kernels

/*
#include <stdint.h>
#include <math.h>

#pragma GCC optimize("O3", "fp-contract=off", "no-math-errno", "no-trapping-math")

// rljob_expf is kernels.expf's polynomial path (expf.go) statement for
// statement: the same float32 operations in the same order, no FMA
// contraction (fp-contract=off above, and no fma target; Go does not fuse on
// GOAMD64=v1 either), so the bits are the same for -87.33654 <= x <=
// 88.37626. fx ± 0.5 is written with copysignf (same result: fx − 0.5 for
// fx < 0, fx + 0.5 otherwise, −0 included, as n = 0 either way) so that the
// loops have no branch to vectorize around. Out-of-range x is the callers'
// business (rljob_expf_bad).
static inline __attribute__((always_inline)) float rljob_expf(float x) {
	float fx = x * 1.44269504088896341f;
	fx = fx + copysignf(0.5f, fx);
	int32_t n = (int32_t)fx;
	float fn = (float)n;
	float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
	float z = r * r;
	float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z + r) + 1;
	union { uint32_t u; float f; } b;
	b.u = (uint32_t)(n + 127) << 23;
	return p * b.f;
}

// The loops are compiled for AVX-512, AVX2 and baseline x86-64; rljob_cpu
// picks one at the first call. scan returns 1 when some exp argument −gate[i]
// is outside the polynomial range (or NaN): the caller then runs the Go loop.
#define RLJOB_SWIGLU(SUFFIX, ATTR) \
ATTR static int swiglu_scan_##SUFFIX(const float *gate, long n) { \
	int bad = 0; \
	for (long i = 0; i < n; i++) { \
		float x = -gate[i]; \
		bad |= !((x >= -87.33654f) & (x <= 88.37626f)); \
	} \
	return bad; \
} \
ATTR static void swiglu_fwd_##SUFFIX(float *out, const float *gate, const float *up, long n) { \
	for (long i = 0; i < n; i++) { \
		float g = gate[i]; \
		float s = 1 / (1 + rljob_expf(-g)); \
		out[i] = g * s * up[i]; \
	} \
} \
ATTR static void swiglu_bwd_##SUFFIX(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n) { \
	for (long i = 0; i < n; i++) { \
		float g = gate[i]; \
		float s = 1 / (1 + rljob_expf(-g)); \
		dgate[i] = dgate[i] + dout[i] * up[i] * s * (1 + g * (1 - s)); \
		dup[i] = dup[i] + dout[i] * g * s; \
	} \
}

RLJOB_SWIGLU(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2"))))
RLJOB_SWIGLU(avx2, __attribute__((target("avx2"))))
RLJOB_SWIGLU(base, )

static int rljob_detected = -1, rljob_level = -1;

static int rljob_cpu(void) {
	if (rljob_level < 0) {
		__builtin_cpu_init();
		rljob_detected = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
		rljob_level = rljob_detected;
	}
	return rljob_level;
}

// rljob_swiglu_level selects loop set want (2 AVX-512, 1 AVX2, 0 baseline)
// when the CPU has it and returns the one in use; for tests.
static int rljob_swiglu_level(int want) {
	rljob_cpu();
	if (want >= 0 && want <= rljob_detected) {
		rljob_level = want;
	}
	return rljob_level;
}

// rljob_swiglu_fwd returns 1 (and writes nothing) when the Go loop must do the range.
static int rljob_swiglu_fwd(float *out, const float *gate, const float *up, long n) {
	switch (rljob_cpu()) {
	case 2: if (swiglu_scan_avx512(gate, n)) return 1; swiglu_fwd_avx512(out, gate, up, n); return 0;
	case 1: if (swiglu_scan_avx2(gate, n)) return 1; swiglu_fwd_avx2(out, gate, up, n); return 0;
	default: if (swiglu_scan_base(gate, n)) return 1; swiglu_fwd_base(out, gate, up, n); return 0;
	}
}

// rljob_swiglu_bwd returns 1 (and writes nothing) when the Go loop must do the range.
static int rljob_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n) {
	switch (rljob_cpu()) {
	case 2: if (swiglu_scan_avx512(gate, n)) return 1; swiglu_bwd_avx512(dgate, dup, dout, gate, up, n); return 0;
	case 1: if (swiglu_scan_avx2(gate, n)) return 1; swiglu_bwd_avx2(dgate, dup, dout, gate, up, n); return 0;
	default: if (swiglu_scan_base(gate, n)) return 1; swiglu_bwd_base(dgate, dup, dout, gate, up, n); return 0;
	}
}
*/
import "C"

// With cgo on amd64 the SwiGLU element loops run in C, compiled for
// AVX-512/AVX2 and picked with the kernel set (kernelset.go; the Go loop
// for the "go" set): the sigmoid's expf
// was about 18% of the CPU time of a training step on shape b. The C code is
// kernels' expf and the Go loop's operations in the same order without FMA
// contraction, so the bytes equal the pure-Go path's (TestSwiGLUCMatchesGo).
// A range holding a gate value outside expf's polynomial range (|g| > 87:
// saturated sigmoid, ±Inf, NaN) is done by the Go loop instead.

// swigluFwdRange is out[i] = g·sigmoid(g)·up[i] for g = gate[i], i < len(out).
func swigluFwdRange(out, gate, up []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	gate, up = gate[:n], up[:n]
	if biCurLevel == 0 || C.rljob_swiglu_fwd(cf(out), cf(gate), cf(up), C.long(n)) != 0 {
		swigluFwdRangeGo(out, gate, up)
	}
}

// swigluBwdRange accumulates SwiGLU's input gradients over len(dgate)
// elements (see swigluBwdRangeGo).
func swigluBwdRange(dgate, dup, dout, gate, up []float32) {
	n := len(dgate)
	if n == 0 {
		return
	}
	dup, dout, gate, up = dup[:n], dout[:n], gate[:n], up[:n]
	if biCurLevel == 0 || C.rljob_swiglu_bwd(cf(dgate), cf(dup), cf(dout), cf(gate), cf(up), C.long(n)) != 0 {
		swigluBwdRangeGo(dgate, dup, dout, gate, up)
	}
}

// swigluLevel selects the C loop set (2 AVX-512, 1 AVX2, 0 baseline) when
// the CPU has it (want < 0 leaves it) and returns the one in use; for tests.
func swigluLevel(want int) int { return int(C.rljob_swiglu_level(C.int(want))) }
