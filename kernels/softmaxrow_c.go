//go:build cgo && amd64

package kernels

/*
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

#pragma GCC optimize("O3", "fp-contract=off", "no-math-errno", "no-trapping-math")

#define RJ_LOG2E 1.4426950408889634073599246810018920
#define RJ_LN2U 0.69314718055966295651160180568695068359375
#define RJ_LN2L 0.28235290563031577122588448175013436025525412068e-12

// rj_goexp is expd.go's goExp (math.Exp's amd64 FMA path) for one value:
// the same operations in the same order, fma() where the assembly has an
// FMA, everything else rounded on its own (fp-contract=off).
__attribute__((target("avx2,fma")))
static double rj_goexp(double x) {
	union { double d; uint64_t u; } b = { x };
	if ((b.u & ~(1ULL << 63)) >= 0x7ff0000000000000ULL) {
		return b.u == 0xfff0000000000000ULL ? 0.0 : x;
	}
	if (x > 7.09782712893384e+02) return __builtin_inf();
	int32_t e = _mm_cvtsd_si32(_mm_set_sd(RJ_LOG2E * x));
	double fe = (double)e;
	double r = __builtin_fma(-RJ_LN2U, fe, x);
	r = __builtin_fma(-RJ_LN2L, fe, r);
	r = r * 0.0625;
	double p = 2.4801587301587301587e-5;
	p = __builtin_fma(p, r, 1.9841269841269841270e-4);
	p = __builtin_fma(p, r, 1.3888888888888888889e-3);
	p = __builtin_fma(p, r, 8.3333333333333333333e-3);
	p = __builtin_fma(p, r, 4.1666666666666666667e-2);
	p = __builtin_fma(p, r, 1.6666666666666666667e-1);
	p = __builtin_fma(p, r, 0.5);
	p = __builtin_fma(p, r, 1.0);
	double x0 = r * p, x1;
	x1 = x0 + 2.0; x0 = x0 * x1;
	x1 = x0 + 2.0; x0 = x0 * x1;
	x1 = x0 + 2.0; x0 = x0 * x1;
	x1 = x0 + 2.0; x0 = __builtin_fma(x0, x1, 1.0);
	int64_t be = (int64_t)e + 0x3ff;
	union { uint64_t u; double d; } s;
	if (be <= 0) {
		if (be < -52) return 0.0;
		s.u = (uint64_t)(be + 0x3fe) << 52;
		x0 = x0 * s.d;
		s.u = 1ULL << 52;
		return x0 * s.d;
	}
	if (be >= 0x7ff) return __builtin_inf();
	s.u = (uint64_t)be << 52;
	return x0 * s.d;
}

// gomaxf is Go's max for float32: NaN if either is NaN, max(-0, +0) = +0.
static inline float rj_gomaxf(float a, float b) {
	if (a != a) return a;
	if (b != b) return b;
	if (a == 0.0f && b == 0.0f) {
		union { float f; uint32_t u; } x = { a }, y = { b };
		x.u &= y.u;
		return x.f;
	}
	return a > b ? a : b;
}

// rj_rowmax is max over v of float32(row[v]·inv) with Go's max, from
// -Inf. The vector max is exact; a row with a NaN or a zero maximum
// (where the sign of zero matters) takes the scalar loop.
__attribute__((target("avx2")))
static float rj_rowmax_scalar(const float *row, long n, float inv) {
	float mx = -__builtin_inff();
	for (long v = 0; v < n; v++) mx = rj_gomaxf(mx, row[v] * inv);
	return mx;
}

// The exp's polynomial, shared by the 8- and 4-lane versions: P is the
// vector type, the macros its operations.
#define RJ_EXP_BODY(P, SET1, MUL, ADD, FMADD, FNMADD) \
	P r = FNMADD(SET1(RJ_LN2U), fe, x); \
	r = FNMADD(SET1(RJ_LN2L), fe, r); \
	r = MUL(r, SET1(0.0625)); \
	P p = SET1(2.4801587301587301587e-5); \
	p = FMADD(p, r, SET1(1.9841269841269841270e-4)); \
	p = FMADD(p, r, SET1(1.3888888888888888889e-3)); \
	p = FMADD(p, r, SET1(8.3333333333333333333e-3)); \
	p = FMADD(p, r, SET1(4.1666666666666666667e-2)); \
	p = FMADD(p, r, SET1(1.6666666666666666667e-1)); \
	p = FMADD(p, r, SET1(0.5)); \
	p = FMADD(p, r, SET1(1.0)); \
	P x0 = MUL(r, p), x1; \
	x1 = ADD(x0, SET1(2.0)); x0 = MUL(x0, x1); \
	x1 = ADD(x0, SET1(2.0)); x0 = MUL(x0, x1); \
	x1 = ADD(x0, SET1(2.0)); x0 = MUL(x0, x1); \
	x1 = ADD(x0, SET1(2.0)); x0 = FMADD(x0, x1, SET1(1.0));

// rj_exp8 is rj_goexp on 8 lanes for the lanes whose result is a normal
// number; *special gets the others (x not finite, overflow, denormal or
// zero results), which the caller recomputes with rj_goexp.
__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
static inline __m512d rj_exp8(__m512d x, __mmask8 *special) {
	__m256i e = _mm512_cvtpd_epi32(_mm512_mul_pd(_mm512_set1_pd(RJ_LOG2E), x));
	__m512d fe = _mm512_cvtepi32_pd(e);
	RJ_EXP_BODY(__m512d, _mm512_set1_pd, _mm512_mul_pd, _mm512_add_pd, _mm512_fmadd_pd, _mm512_fnmadd_pd)
	__m256i be = _mm256_add_epi32(e, _mm256_set1_epi32(0x3ff));
	*special = _mm256_cmple_epi32_mask(be, _mm256_setzero_si256()) | _mm256_cmpge_epi32_mask(be, _mm256_set1_epi32(0x7ff));
	__m512i bits = _mm512_slli_epi64(_mm512_cvtepi32_epi64(be), 52);
	return _mm512_mul_pd(x0, _mm512_castsi512_pd(bits));
}

__attribute__((target("avx2,fma")))
static inline __m256d rj_exp4(__m256d x, int *special) {
	__m128i e = _mm256_cvtpd_epi32(_mm256_mul_pd(_mm256_set1_pd(RJ_LOG2E), x));
	__m256d fe = _mm256_cvtepi32_pd(e);
	RJ_EXP_BODY(__m256d, _mm256_set1_pd, _mm256_mul_pd, _mm256_add_pd, _mm256_fmadd_pd, _mm256_fnmadd_pd)
	__m128i be = _mm_add_epi32(e, _mm_set1_epi32(0x3ff));
	__m128i bad = _mm_or_si128(_mm_cmpgt_epi32(_mm_set1_epi32(1), be), _mm_cmpgt_epi32(be, _mm_set1_epi32(0x7fe)));
	*special = _mm_movemask_ps(_mm_castsi128_ps(bad));
	__m256i bits = _mm256_slli_epi64(_mm256_cvtepi32_epi64(be), 52);
	return _mm256_mul_pd(x0, _mm256_castsi256_pd(bits));
}

// rj_exp8_all and rj_exp4_all are rj_exp8 and rj_exp4 with their
// special lanes recomputed by rj_goexp: goExp on every lane.
__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
static inline __m512d rj_exp8_all(__m512d x) {
	__mmask8 sp;
	__m512d e = rj_exp8(x, &sp);
	if (sp) {
		double ex[8], xs[8];
		_mm512_storeu_pd(ex, e);
		_mm512_storeu_pd(xs, x);
		for (int i = 0; i < 8; i++) if (sp >> i & 1) ex[i] = rj_goexp(xs[i]);
		e = _mm512_loadu_pd(ex);
	}
	return e;
}

__attribute__((target("avx2,fma")))
static inline __m256d rj_exp4_all(__m256d x) {
	int sp;
	__m256d e = rj_exp4(x, &sp);
	if (sp) {
		double ex[4], xs[4];
		_mm256_storeu_pd(ex, e);
		_mm256_storeu_pd(xs, x);
		for (int i = 0; i < 4; i++) if (sp >> i & 1) ex[i] = rj_goexp(xs[i]);
		e = _mm256_loadu_pd(ex);
	}
	return e;
}

// rj_row_tail: one value of the row, as softmaxRowGo's loop body.
#define RJ_ROW_ONE(V) do { \
	float z_ = row[V] * inv; \
	double ex_ = rj_goexp((double)(z_ - mx)); \
	if (er) er[V] = (float)ex_; \
	if (w) w[V] = ex_; \
	s += ex_; \
	if (want_sz) { double t_ = ex_ * (double)z_; sz += t_; } \
} while (0)

// The row: out[0] = Σ ex (in v order), out[1] = Σ ex·z (in v order) when
// want_sz, out[2] = mx; ex[v] = goExp(float64(float32(row[v]·inv) − mx))
// stored as float32 in er and as float64 in w when they are not NULL.
__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
static void rj_softmax_row_avx512(const float *row, long n, float inv, float *er, double *w, int want_sz, double *out) {
	__m512 vm = _mm512_set1_ps(-__builtin_inff());
	__mmask16 nan = 0;
	long v = 0;
	for (; v + 16 <= n; v += 16) {
		__m512 z = _mm512_mul_ps(_mm512_loadu_ps(row + v), _mm512_set1_ps(inv));
		nan |= _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
		vm = _mm512_max_ps(vm, z);
	}
	float mx = _mm512_reduce_max_ps(vm);
	for (; v < n; v++) mx = rj_gomaxf(mx, row[v] * inv);
	if (nan || mx == 0.0f || mx != mx) mx = rj_rowmax_scalar(row, n, inv);
	double s = 0, sz = 0, ex[8], pr[8];
	__m256 vinv = _mm256_set1_ps(inv), vmx = _mm256_set1_ps(mx);
	for (v = 0; v + 8 <= n; v += 8) {
		__m256 z = _mm256_mul_ps(_mm256_loadu_ps(row + v), vinv);
		__m512d e = rj_exp8_all(_mm512_cvtps_pd(_mm256_sub_ps(z, vmx)));
		_mm512_storeu_pd(ex, e);
		if (er) _mm256_storeu_ps(er + v, _mm512_cvtpd_ps(e));
		if (w) _mm512_storeu_pd(w + v, e);
		s += ex[0]; s += ex[1]; s += ex[2]; s += ex[3];
		s += ex[4]; s += ex[5]; s += ex[6]; s += ex[7];
		if (want_sz) {
			_mm512_storeu_pd(pr, _mm512_mul_pd(e, _mm512_cvtps_pd(z)));
			sz += pr[0]; sz += pr[1]; sz += pr[2]; sz += pr[3];
			sz += pr[4]; sz += pr[5]; sz += pr[6]; sz += pr[7];
		}
	}
	for (; v < n; v++) RJ_ROW_ONE(v);
	out[0] = s; out[1] = sz; out[2] = mx;
}

__attribute__((target("avx2,fma")))
static void rj_softmax_row_avx2(const float *row, long n, float inv, float *er, double *w, int want_sz, double *out) {
	__m256 vm = _mm256_set1_ps(-__builtin_inff());
	__m256 nanv = _mm256_setzero_ps();
	long v = 0;
	for (; v + 8 <= n; v += 8) {
		__m256 z = _mm256_mul_ps(_mm256_loadu_ps(row + v), _mm256_set1_ps(inv));
		nanv = _mm256_or_ps(nanv, _mm256_cmp_ps(z, z, _CMP_UNORD_Q));
		vm = _mm256_max_ps(vm, z);
	}
	float m8[8];
	_mm256_storeu_ps(m8, vm);
	float mx = -__builtin_inff();
	for (int i = 0; i < 8; i++) mx = m8[i] > mx ? m8[i] : mx;
	for (; v < n; v++) mx = rj_gomaxf(mx, row[v] * inv);
	if (_mm256_movemask_ps(nanv) || mx == 0.0f || mx != mx) mx = rj_rowmax_scalar(row, n, inv);
	double s = 0, sz = 0, ex[4], pr[4];
	__m128 vinv = _mm_set1_ps(inv), vmx = _mm_set1_ps(mx);
	for (v = 0; v + 4 <= n; v += 4) {
		__m128 z = _mm_mul_ps(_mm_loadu_ps(row + v), vinv);
		__m256d e = rj_exp4_all(_mm256_cvtps_pd(_mm_sub_ps(z, vmx)));
		_mm256_storeu_pd(ex, e);
		if (er) _mm_storeu_ps(er + v, _mm256_cvtpd_ps(e));
		if (w) _mm256_storeu_pd(w + v, e);
		s += ex[0]; s += ex[1]; s += ex[2]; s += ex[3];
		if (want_sz) {
			_mm256_storeu_pd(pr, _mm256_mul_pd(e, _mm256_cvtps_pd(z)));
			sz += pr[0]; sz += pr[1]; sz += pr[2]; sz += pr[3];
		}
	}
	for (; v < n; v++) RJ_ROW_ONE(v);
	out[0] = s; out[1] = sz; out[2] = mx;
}

// rj_exp_row: er[v] = (float)goExp((double)(float32(row[v]·inv) − mx))
// for a given mx: the loop of the row above without its max and sums (the
// head's backward by slices of the vocabulary recomputes e from the
// forward's mx).
__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
static void rj_exp_row_avx512(const float *row, long n, float inv, float mx, float *er) {
	__m256 vinv = _mm256_set1_ps(inv), vmx = _mm256_set1_ps(mx);
	long v = 0;
	for (; v + 8 <= n; v += 8) {
		__m256 z = _mm256_mul_ps(_mm256_loadu_ps(row + v), vinv);
		_mm256_storeu_ps(er + v, _mm512_cvtpd_ps(rj_exp8_all(_mm512_cvtps_pd(_mm256_sub_ps(z, vmx)))));
	}
	for (; v < n; v++) er[v] = (float)rj_goexp((double)(row[v] * inv - mx));
}

__attribute__((target("avx2,fma")))
static void rj_exp_row_avx2(const float *row, long n, float inv, float mx, float *er) {
	__m128 vinv = _mm_set1_ps(inv), vmx = _mm_set1_ps(mx);
	long v = 0;
	for (; v + 4 <= n; v += 4) {
		__m128 z = _mm_mul_ps(_mm_loadu_ps(row + v), vinv);
		_mm_storeu_ps(er + v, _mm256_cvtpd_ps(rj_exp4_all(_mm256_cvtps_pd(_mm_sub_ps(z, vmx)))));
	}
	for (; v < n; v++) er[v] = (float)rj_goexp((double)(row[v] * inv - mx));
}

static void rljob_exp_row(int level, const float *row, long n, float inv, float mx, float *er) {
	if (level >= 2) {
		rj_exp_row_avx512(row, n, inv, mx, er);
	} else {
		rj_exp_row_avx2(row, n, inv, mx, er);
	}
}

static void rljob_softmax_row(int level, const float *row, long n, float inv, float *er, double *w, int want_sz, double *out) {
	if (level >= 2) {
		rj_softmax_row_avx512(row, n, inv, er, w, want_sz, out);
	} else {
		rj_softmax_row_avx2(row, n, inv, er, w, want_sz, out);
	}
}
*/
import "C"

import "unsafe"

// softmaxRowMin is the shortest row worth a cgo call (a few hundred ns).
const softmaxRowMin = 256

// softmaxRow: see softmaxRowGo. With cgo on amd64, the avx512 and avx2
// kernel sets run it in C, 8 or 4 exps at a time, with the same bits.
func softmaxRow(row []float32, inv float32, er []float32, w []float64, wantSz bool) (mx float32, s, sz float64) {
	n := len(row)
	if biCurLevel == 0 || n < softmaxRowMin {
		return softmaxRowGo(row, inv, er, w, wantSz)
	}
	var erp *C.float
	if er != nil {
		erp = (*C.float)(unsafe.Pointer(&er[:n][0]))
	}
	var wp *C.double
	if w != nil {
		wp = (*C.double)(unsafe.Pointer(&w[:n][0]))
	}
	var out [3]C.double
	z := C.int(0)
	if wantSz {
		z = 1
	}
	C.rljob_softmax_row(C.int(biCurLevel), (*C.float)(unsafe.Pointer(&row[0])), C.long(n), C.float(inv), erp, wp, z, &out[0])
	yieldAfter(n * yieldElem)
	return float32(out[2]), float64(out[0]), float64(out[1])
}

// expRow: see expRowGo; in C for the avx512 and avx2 kernel sets (the
// same bits).
func expRow(row []float32, inv, mx float32, er []float32) {
	n := len(row)
	if biCurLevel == 0 || n < softmaxRowMin {
		expRowGo(row, inv, mx, er)
		return
	}
	_ = er[n-1]
	C.rljob_exp_row(C.int(biCurLevel), (*C.float)(unsafe.Pointer(&row[0])), C.long(n), C.float(inv), C.float(mx), (*C.float)(unsafe.Pointer(&er[0])))
	yieldAfter(n * yieldElem)
}
