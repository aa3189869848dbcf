//go:build cgo && amd64

package kernels

/*
#cgo CFLAGS: -O3
#include <immintrin.h>

// The batch-invariant GEMM's C kernels (see bigemm.go for the contract):
// every out[m,n] is acc = bias[n] (or +0), then acc = fma(inp[m,k],
// w[n,k], acc) for k = 0..K-1 in order, each fma a single-rounding float32
// fused multiply-add (_mm512_fmadd_ps / _mm256_fmadd_ps lane by lane). The
// register blocking (MR rows × NP panels of 16 columns) only decides which
// elements are computed together, never the order of one element's sum.
//
// w is packed (bigemm.go): panel p holds columns 16p..16p+15 as (K, 16),
// ps floats after panel p−1. The rows of inp are packed too, MR rows at a
// time, interleaved: a[k·MR + r] = inp[m+r, k] (rj_packa), so the MR
// broadcasts of one k read one contiguous run whatever inp's strides (a
// transposed inp, dW's doutᵀ, would otherwise touch a page per k). Each
// kernel broadcasts a[k·MR + r] and multiplies it into NP panel rows, the
// classic outer-product micro-kernel.

#include <stdlib.h>

#define RJ_MRMAX 12

// RJ_PFD is how far ahead (in floats: 8 k) the AVX-512 kernels prefetch
// their panels (measured: a few per cent over the hardware prefetcher).
#define RJ_PFD 128

// RJ_KERN512 defines k512_MR_NP (rows packed: inp[m+r, k] at a[k·MR + r])
// and k512d_MR_NP (rows read in place: at a[r·lda + k]), each for rows
// m..m+MR-1 × panels p..p+NP-1. nv[i] is the number of valid columns of
// panel i (1..16).
#define RJ_KERN512(MR, NP) RJ_KERN512X(k512_##MR##_##NP, MR, NP, a[k * MR + r]) RJ_KERN512X(k512d_##MR##_##NP, MR, NP, a[r * lda + k])
#define RJ_KERN512X(NAME, MR, NP, AEL) \
__attribute__((target("avx512f"))) static void NAME(float *out, long ldo, const float *a, long lda, const float *w, long ps, long K, const float *bias, int accum, const int *nv) { \
	__m512 acc[MR][NP]; \
	__mmask16 mk[NP]; \
	const float *wp[NP]; \
	_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) { \
		wp[i] = w + i * ps; \
		mk[i] = nv[i] >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv[i]) - 1); \
		__m512 b0 = bias ? _mm512_maskz_loadu_ps(mk[i], bias + 16 * i) : _mm512_setzero_ps(); \
		_Pragma("GCC unroll 12") for (int r = 0; r < MR; r++) acc[r][i] = accum ? _mm512_maskz_loadu_ps(mk[i], out + r * ldo + 16 * i) : b0; \
	} \
	for (long k = 0; k < K; k++) { \
		__m512 wv[NP]; \
		_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) { \
			wv[i] = _mm512_loadu_ps(wp[i] + k * 16); \
			_mm_prefetch((const char *)(wp[i] + k * 16 + RJ_PFD), _MM_HINT_T0); \
		} \
		_Pragma("GCC unroll 12") for (int r = 0; r < MR; r++) { \
			__m512 x = _mm512_set1_ps(AEL); \
			_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) acc[r][i] = _mm512_fmadd_ps(x, wv[i], acc[r][i]); \
		} \
	} \
	_Pragma("GCC unroll 12") for (int r = 0; r < MR; r++) \
		_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) _mm512_mask_storeu_ps(out + r * ldo + 16 * i, mk[i], acc[r][i]); \
}

// RJ_KERN256 is the AVX2 twin: a panel is two ymm halves.
#define RJ_KERN256(MR, NP) RJ_KERN256X(k256_##MR##_##NP, MR, NP, a + k * MR + r) RJ_KERN256X(k256d_##MR##_##NP, MR, NP, a + r * lda + k)
#define RJ_KERN256X(NAME, MR, NP, AP) \
__attribute__((target("avx2,fma"))) static void NAME(float *out, long ldo, const float *a, long lda, const float *w, long ps, long K, const float *bias, int accum, const int *nv) { \
	__m256 acc[MR][2 * NP]; \
	__m256i mk[2 * NP]; \
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); \
	_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) { \
		int v = nv[i / 2] - 8 * (i % 2); \
		mk[i] = _mm256_cmpgt_epi32(_mm256_set1_epi32(v), lane); \
		__m256 b0 = bias ? _mm256_maskload_ps(bias + 8 * i, mk[i]) : _mm256_setzero_ps(); \
		_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r][i] = accum ? _mm256_maskload_ps(out + r * ldo + 8 * i, mk[i]) : b0; \
	} \
	for (long k = 0; k < K; k++) { \
		__m256 wv[2 * NP]; \
		_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) wv[i] = _mm256_loadu_ps(w + (i / 2) * ps + k * 16 + 8 * (i % 2)); \
		_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) { \
			__m256 x = _mm256_broadcast_ss(AP); \
			_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) acc[r][i] = _mm256_fmadd_ps(x, wv[i], acc[r][i]); \
		} \
	} \
	_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) \
		_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) _mm256_maskstore_ps(out + r * ldo + 8 * i, mk[i], acc[r][i]); \
}

typedef void (*rj_kern)(float *, long, const float *, long, const float *, long, long, const float *, int, const int *);

// Blockings: AVX-512 has 32 zmm registers, MR·NP ≤ 24 accumulators plus NP
// weights and a broadcast (12 rows × 2 panels: 2 loads and 12 broadcasts
// per 24 FMAs); AVX2 has 16 ymm, MR·2NP ≤ 12. Fewer rows (a decode step,
// a block's last rows) take more panels so that enough independent FMAs
// are in flight to cover the FMA latency.
RJ_KERN512(1, 1) RJ_KERN512(1, 2) RJ_KERN512(1, 3) RJ_KERN512(1, 4) RJ_KERN512(1, 5) RJ_KERN512(1, 6) RJ_KERN512(1, 7) RJ_KERN512(1, 8)
RJ_KERN512(2, 1) RJ_KERN512(2, 2) RJ_KERN512(2, 3) RJ_KERN512(2, 4) RJ_KERN512(2, 5) RJ_KERN512(2, 6)
RJ_KERN512(3, 1) RJ_KERN512(3, 2) RJ_KERN512(3, 3) RJ_KERN512(3, 4) RJ_KERN512(3, 5) RJ_KERN512(3, 6)
RJ_KERN512(4, 1) RJ_KERN512(4, 2) RJ_KERN512(4, 3) RJ_KERN512(4, 4) RJ_KERN512(4, 5)
RJ_KERN512(5, 1) RJ_KERN512(5, 2) RJ_KERN512(5, 3) RJ_KERN512(5, 4)
RJ_KERN512(6, 1) RJ_KERN512(6, 2) RJ_KERN512(6, 3) RJ_KERN512(6, 4)
RJ_KERN512(7, 1) RJ_KERN512(7, 2) RJ_KERN512(7, 3)
RJ_KERN512(8, 1) RJ_KERN512(8, 2) RJ_KERN512(8, 3)
RJ_KERN512(9, 1) RJ_KERN512(9, 2)
RJ_KERN512(10, 1) RJ_KERN512(10, 2)
RJ_KERN512(11, 1) RJ_KERN512(11, 2)
RJ_KERN512(12, 1) RJ_KERN512(12, 2)

RJ_KERN256(1, 1) RJ_KERN256(1, 2) RJ_KERN256(1, 3) RJ_KERN256(1, 4)
RJ_KERN256(2, 1) RJ_KERN256(2, 2) RJ_KERN256(2, 3)
RJ_KERN256(3, 1) RJ_KERN256(3, 2)
RJ_KERN256(4, 1)
RJ_KERN256(5, 1)
RJ_KERN256(6, 1)

// rj_tab512[mr][np], rj_np512[mr]: the kernel and panel width per row count.
static const rj_kern rj_tab512[RJ_MRMAX + 1][9] = {
	{0},
	{0, k512_1_1, k512_1_2, k512_1_3, k512_1_4, k512_1_5, k512_1_6, k512_1_7, k512_1_8},
	{0, k512_2_1, k512_2_2, k512_2_3, k512_2_4, k512_2_5, k512_2_6},
	{0, k512_3_1, k512_3_2, k512_3_3, k512_3_4, k512_3_5, k512_3_6},
	{0, k512_4_1, k512_4_2, k512_4_3, k512_4_4, k512_4_5},
	{0, k512_5_1, k512_5_2, k512_5_3, k512_5_4},
	{0, k512_6_1, k512_6_2, k512_6_3, k512_6_4},
	{0, k512_7_1, k512_7_2, k512_7_3},
	{0, k512_8_1, k512_8_2, k512_8_3},
	{0, k512_9_1, k512_9_2},
	{0, k512_10_1, k512_10_2},
	{0, k512_11_1, k512_11_2},
	{0, k512_12_1, k512_12_2},
};
static const int rj_np512[RJ_MRMAX + 1] = {0, 8, 6, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2};

static const rj_kern rj_tab256[RJ_MRMAX + 1][9] = {
	{0},
	{0, k256_1_1, k256_1_2, k256_1_3, k256_1_4},
	{0, k256_2_1, k256_2_2, k256_2_3},
	{0, k256_3_1, k256_3_2},
	{0, k256_4_1},
	{0, k256_5_1},
	{0, k256_6_1},
};
static const int rj_np256[RJ_MRMAX + 1] = {0, 4, 3, 2, 1, 1, 1};

// rj_tab512d, rj_tab256d: the kernels that read rows in place.
static const rj_kern rj_tab512d[RJ_MRMAX + 1][9] = {
	{0},
	{0, k512d_1_1, k512d_1_2, k512d_1_3, k512d_1_4, k512d_1_5, k512d_1_6, k512d_1_7, k512d_1_8},
	{0, k512d_2_1, k512d_2_2, k512d_2_3, k512d_2_4, k512d_2_5, k512d_2_6},
	{0, k512d_3_1, k512d_3_2, k512d_3_3, k512d_3_4, k512d_3_5, k512d_3_6},
	{0, k512d_4_1, k512d_4_2, k512d_4_3, k512d_4_4, k512d_4_5},
	{0, k512d_5_1, k512d_5_2, k512d_5_3, k512d_5_4},
	{0, k512d_6_1, k512d_6_2, k512d_6_3, k512d_6_4},
	{0, k512d_7_1, k512d_7_2, k512d_7_3},
	{0, k512d_8_1, k512d_8_2, k512d_8_3},
	{0, k512d_9_1, k512d_9_2},
	{0, k512d_10_1, k512d_10_2},
	{0, k512d_11_1, k512d_11_2},
	{0, k512d_12_1, k512d_12_2},
};

static const rj_kern rj_tab256d[RJ_MRMAX + 1][9] = {
	{0},
	{0, k256d_1_1, k256d_1_2, k256d_1_3, k256d_1_4},
	{0, k256d_2_1, k256d_2_2, k256d_2_3},
	{0, k256d_3_1, k256d_3_2},
	{0, k256d_4_1},
	{0, k256d_5_1},
	{0, k256d_6_1},
};

// RJ_MC is the number of rows packed at a time: their inputs stay in
// cache while the panels of the range stream past them.
#define RJ_MC 96

// RJ_PG is the number of panels that stay in cache while the packed rows
// of RJ_MC rows go past them, MR rows at a time.
#ifndef RJ_PG
#define RJ_PG 8
#endif

// rj_abuf is this thread's buffer for packed rows of inp (grown, never
// freed: one per thread that ever ran a product).
static __thread float *rj_abuf;
static __thread long rj_acap;

static float *rj_abuf_get(long n) {
	if (n > rj_acap) {
		free(rj_abuf);
		rj_abuf = aligned_alloc(64, (size_t)((n + 15) / 16 * 16) * sizeof(float));
		rj_acap = rj_abuf ? (n + 15) / 16 * 16 : 0;
	}
	return rj_abuf;
}

// rj_packa copies rows m..m+rows-1 of inp (rows lda apart, columns ldk
// apart) into dst, mrmax rows at a time interleaved: the group of rows
// m+g..m+g+mr-1 (g a multiple of mrmax) starts at dst + g·K and holds
// inp[m+g+r, k] at [k·mr + r]. k is the outer loop: a transposed inp
// (lda 1) is read one contiguous run per k, a page touched once per k.
static void rj_packa(float *dst, const float *inp, long lda, long ldk, long K, long rows, int mrmax) {
	for (long k = 0; k < K; k++) {
		const float *s = inp + k * ldk;
		for (long g = 0; g < rows; g += mrmax) {
			int mr = rows - g < mrmax ? (int)(rows - g) : mrmax;
			float *d = dst + g * K + k * mr;
			const float *sg = s + g * lda;
			if (lda == 1) {
				for (int r = 0; r < mr; r++) d[r] = sg[r];
			} else {
				for (int r = 0; r < mr; r++) d[r] = sg[r * lda];
			}
		}
	}
}

// rljob_bigemm computes out[m, 16p0 .. min(N, 16p1)) for m in [m0, m1)
// with the kernels of level (2 AVX-512, 1 AVX2+FMA). out (M, N) row-major,
// inp (M, K) with rows lda apart and columns ldk apart, w packed: panel p
// at w + p·ps, (K, 16); bias (N) or NULL; accum: each sum starts from
// out's value instead of bias or +0 (bias must be NULL then). Rows whose
// columns are contiguous (ldk 1) are read in place; others are packed
// RJ_MC rows at a time. Rows go past the panels RJ_PG panels at a time.
// Returns -1 when the row buffer cannot be allocated, else 0.
static int rljob_bigemm(int level, float *out, long ldo, const float *inp, long lda, long ldk, const float *w, long ps, const float *bias, int accum, long N, long K, long m0, long m1, long p0, long p1) {
	const int packed = ldk != 1;
	const rj_kern (*tab)[9] = level == 2 ? (packed ? rj_tab512 : rj_tab512d) : (packed ? rj_tab256 : rj_tab256d);
	const int *npw = level == 2 ? rj_np512 : rj_np256;
	const int mrmax = level == 2 ? 12 : 6;
	int nv[8];
	float *abuf = 0;
	if (packed && !(abuf = rj_abuf_get((m1 - m0 < RJ_MC ? m1 - m0 : RJ_MC) * K))) return -1;
	for (long mc = m0; mc < m1; mc += RJ_MC) {
		long me = mc + RJ_MC < m1 ? mc + RJ_MC : m1;
		if (packed) rj_packa(abuf, inp + mc * lda, lda, ldk, K, me - mc, mrmax);
		for (long pg = p0; pg < p1; pg += RJ_PG) {
			long pe = pg + RJ_PG < p1 ? pg + RJ_PG : p1;
			for (long m = mc; m < me; m += mrmax) {
				int mr = me - m < mrmax ? (int)(me - m) : mrmax;
				int npmax = npw[mr];
				const float *a = packed ? abuf + (m - mc) * K : inp + m * lda;
				for (long p = pg; p < pe; p += npmax) {
					int np = pe - p < npmax ? (int)(pe - p) : npmax;
					for (int i = 0; i < np; i++) {
						long v = N - 16 * (p + i);
						nv[i] = v < 16 ? (int)v : 16;
					}
					tab[mr][np](out + m * ldo + 16 * p, ldo, a, lda, w + p * ps, ps, K, bias ? bias + 16 * p : 0, accum, nv);
				}
			}
		}
	}
	return 0;
}

// rljob_pack writes panels [p0, p1) of w (N, K), rows ldw apart, packed
// (see bigemm.go): dst[p·16K + k·16 + j] = w[16p+j, k], 0 past N. Full panels are copied as
// 8×8 transposes in AVX registers.
__attribute__((target("avx2"))) static void rljob_pack(float *dst, const float *w, long ldw, long N, long K, long p0, long p1) {
	for (long p = p0; p < p1; p++) {
		float *d = dst + p * 16 * K;
		long n0 = p * 16;
		long rows = N - n0 < 16 ? N - n0 : 16;
		long k = 0;
		if (rows == 16) {
			for (; k + 8 <= K; k += 8) {
				for (int h = 0; h < 2; h++) {
					const float *s = w + (n0 + 8 * h) * ldw + k;
					__m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ldw), r2 = _mm256_loadu_ps(s + 2 * ldw), r3 = _mm256_loadu_ps(s + 3 * ldw);
					__m256 r4 = _mm256_loadu_ps(s + 4 * ldw), r5 = _mm256_loadu_ps(s + 5 * ldw), r6 = _mm256_loadu_ps(s + 6 * ldw), r7 = _mm256_loadu_ps(s + 7 * ldw);
					__m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
					__m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5), t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
					__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
					__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
					float *o = d + k * 16 + 8 * h;
					_mm256_storeu_ps(o + 0 * 16, _mm256_permute2f128_ps(u0, u4, 0x20));
					_mm256_storeu_ps(o + 1 * 16, _mm256_permute2f128_ps(u1, u5, 0x20));
					_mm256_storeu_ps(o + 2 * 16, _mm256_permute2f128_ps(u2, u6, 0x20));
					_mm256_storeu_ps(o + 3 * 16, _mm256_permute2f128_ps(u3, u7, 0x20));
					_mm256_storeu_ps(o + 4 * 16, _mm256_permute2f128_ps(u0, u4, 0x31));
					_mm256_storeu_ps(o + 5 * 16, _mm256_permute2f128_ps(u1, u5, 0x31));
					_mm256_storeu_ps(o + 6 * 16, _mm256_permute2f128_ps(u2, u6, 0x31));
					_mm256_storeu_ps(o + 7 * 16, _mm256_permute2f128_ps(u3, u7, 0x31));
				}
			}
		}
		for (; k < K; k++) {
			for (long j = 0; j < 16; j++) {
				d[k * 16 + j] = j < rows ? w[(n0 + j) * ldw + k] : 0;
			}
		}
	}
}

// rljob_bigemm_heads runs rljob_bigemm (no bias, all rows and panels) for
// heads products: head h multiplies inp + h·M·K by the packed weight at
// w + h·ws into out + h·M·N.
static int rljob_bigemm_heads(int level, float *out, const float *inp, const float *w, long ws, long ps, long N, long K, long M, long heads) {
	long P = (N + 15) / 16;
	for (long h = 0; h < heads; h++) {
		if (rljob_bigemm(level, out + h * M * N, N, inp + h * M * K, K, 1, w + h * ws, ps, 0, 0, N, K, 0, M, 0, P) < 0) return -1;
	}
	return 0;
}

// rljob_fma_peak runs n × 12 independent AVX-512 FMAs (the most a core
// keeps in flight) and returns a sum that depends on all of them: the
// FMA peak the GEMM benchmarks are compared with.
__attribute__((target("avx512f"))) static float rljob_fma_peak(long n) {
	__m512 a[12], x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
	for (long k = 0; k < n; k++) {
		_Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
	}
	__m512 s = a[0];
	for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
	return _mm512_reduce_add_ps(s);
}

// rljob_fma_peak_avx2 is rljob_fma_peak with 8-lane AVX2 FMAs: the
// ceiling of the avx2 set on a CPU without AVX-512.
__attribute__((target("avx2,fma"))) static float rljob_fma_peak_avx2(long n) {
	__m256 a[12], x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
	for (long k = 0; k < n; k++) {
		_Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
	}
	__m256 s = a[0];
	for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
	float t[8];
	_mm256_storeu_ps(t, s);
	return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

// rljob_micro_loop runs the widest micro-kernel of level (2: 12 rows ×
// 2 panels, 1: 6 rows × 1 panel), rows packed or read in place, reps times
// over the same K-deep operands (in cache after the first): the kernel's
// own rate, without the driver's blocking, packing and memory traffic
// (the micro-kernel benchmark). Returns -1 when the buffers cannot be
// allocated.
static int rljob_micro_loop(int level, int inplace, long K, long reps) {
	int mr = level == 2 ? 12 : 6, np = level == 2 ? 2 : 1;
	rj_kern f = level == 2 ? (inplace ? rj_tab512d : rj_tab512)[mr][np] : (inplace ? rj_tab256d : rj_tab256)[mr][np];
	float *a = aligned_alloc(64, (size_t)(mr * K) * sizeof(float) + 64), *w = aligned_alloc(64, (size_t)(16 * np * K) * sizeof(float) + 64);
	float out[12 * 32];
	int nv[8] = {16, 16, 16, 16, 16, 16, 16, 16};
	if (!a || !w) {
		free(a);
		free(w);
		return -1;
	}
	for (long i = 0; i < mr * K; i++) a[i] = 1e-3f * (float)(i % 7);
	for (long i = 0; i < 16 * np * K; i++) w[i] = 1e-3f * (float)(i % 5);
	for (long r = 0; r < reps; r++) f(out, 32, a, K, w, 16 * K, K, 0, 0, nv);
	free(a);
	free(w);
	return (int)out[0] & 0; // the result is used: the loop is not optimised away
}

static int rj_detected = -1, rj_level = -1;

// rljob_bigemm_level selects kernel set want (2 AVX-512, 1 AVX2+FMA, 0
// none: the Go loop) when the CPU has it (want < 0 keeps the current one)
// and returns the one in use.
static int rljob_bigemm_level(int want) {
	if (rj_detected < 0) {
		__builtin_cpu_init();
		rj_detected = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) ? 2 : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
		rj_level = rj_detected;
	}
	if (want >= 0 && want <= rj_detected) {
		rj_level = want;
	}
	return rj_level;
}
*/
import "C"

import "unsafe"

// biDetectedLevel is the best kernel set of this CPU: 2 AVX-512, 1
// AVX2+FMA, 0 none (Go loop); biCurLevel the one in use (kept on the Go
// side: a cgo call to ask costs as much as a small product).
const cgoKernels = true

var (
	biDetectedLevel = int(C.rljob_bigemm_level(-1))
	biCurLevel      = biDetectedLevel
)

// fmaPeak runs n·12 vector FMAs on one core, of 16 lanes with AVX-512
// or of 8 with AVX2 (the best the CPU has; for the peak benchmark), and
// returns the lanes per FMA (0, and nothing run, without either).
func fmaPeak(n int) (lanes int) {
	switch {
	case biDetectedLevel >= 2:
		C.rljob_fma_peak(C.long(n))
		return 16
	case biDetectedLevel == 1:
		C.rljob_fma_peak_avx2(C.long(n))
		return 8
	}
	return 0
}

// microLoop runs the kernel set's widest micro-kernel reps times over
// K-deep operands held in cache (rows in place or packed) and returns the
// multiply-adds it did, 0 without a C kernel set (BenchmarkGemmMicroKernel).
func microLoop(inplace bool, K, reps int) (fmas int) {
	level := biCurLevel
	if level == 0 {
		return 0
	}
	in := C.int(0)
	if inplace {
		in = 1
	}
	if C.rljob_micro_loop(C.int(level), in, C.long(K), C.long(reps)) < 0 {
		panic(errRowBuffer)
	}
	mr, cols := 6, 16
	if level == 2 {
		mr, cols = 12, 32
	}
	return mr * cols * K * reps
}

// biLevel selects the kernel set (when the CPU has it; want < 0 keeps it)
// and returns the one in use. For tests and benchmarks; not safe to call
// while a product runs.
func biLevel(want int) int {
	biCurLevel = int(C.rljob_bigemm_level(C.int(want)))
	return biCurLevel
}

// errRowBuffer is the panic when C cannot allocate the buffer of packed
// rows (RJ_MC rows × K floats per thread).
const errRowBuffer = "kernels: biGemm: out of memory for the packed rows of the left-hand side"

func cf(x []float32) *C.float { return (*C.float)(unsafe.Pointer(&x[0])) }

// biGemmRange computes out rows [m0, m1) × panels [p0, p1) of the
// product g (see bigemm.go), in C when the kernel set is AVX2+FMA or
// AVX-512, in Go otherwise.
func biGemmRange(g *biGemm, m0, m1, p0, p1 int) {
	level := biCurLevel
	if level == 0 {
		biGemmRangeGo(g, m0, m1, p0, p1)
		return
	}
	g.check(m1)
	var bp *C.float
	if g.bias != nil {
		bp = cf(g.bias)
	}
	acc := C.int(0)
	if g.acc {
		acc = 1
	}
	pw := g.pw
	if C.rljob_bigemm(C.int(level), cf(g.out), C.long(g.ldo), cf(g.inp), C.long(g.lda), C.long(g.ldk), cf(pw.data), C.long(pw.ps), bp, acc,
		C.long(pw.N), C.long(pw.K), C.long(m0), C.long(m1), C.long(p0), C.long(p1)) < 0 {
		panic(errRowBuffer)
	}
	yieldAfter((m1 - m0) * (p1 - p0) * biPanel * pw.K)
}

// packRange packs panels [p0, p1) of w (rows ldw apart) into pw (see
// PackWeight), with AVX transposes when the kernel set has AVX2. Packing
// only moves floats, so every set gives the same bytes.
func packRange(pw *PackedWeight, w []float32, ldw, p0, p1 int) {
	if biCurLevel == 0 {
		packRangeGo(pw, w, ldw, p0, p1)
		return
	}
	_ = w[(pw.N-1)*ldw+pw.K-1]
	C.rljob_pack(cf(pw.data), cf(w), C.long(ldw), C.long(pw.N), C.long(pw.K), C.long(p0), C.long(p1))
	yieldAfter((p1 - p0) * biPanel * pw.K * yieldElem)
}

// biGemmHeads computes heads products without bias, each of M rows:
// out[h] (M, N) = inp[h] (M, K) · (weight at pw.data[h·wstride:])ᵀ, with
// out and inp holding the heads one after another and pw giving N, K and
// the panel stride. One cgo call for all heads (attention decoding).
func biGemmHeads(out, inp []float32, pw *PackedWeight, wstride, heads, M int) {
	if biCurLevel == 0 {
		biGemmHeadsGo(out, inp, pw, wstride, heads, M)
		return
	}
	N, K := pw.N, pw.K
	out, inp = out[:heads*M*N], inp[:heads*M*K]
	_ = pw.data[(heads-1)*wstride+(pw.panels()-1)*pw.ps+biPanel*K-1] // bounds
	if C.rljob_bigemm_heads(C.int(biCurLevel), cf(out), cf(inp), cf(pw.data), C.long(wstride), C.long(pw.ps),
		C.long(N), C.long(K), C.long(M), C.long(heads)) < 0 {
		panic(errRowBuffer)
	}
}
