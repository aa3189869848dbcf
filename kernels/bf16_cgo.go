//go:build cgo && amd64

package kernels

/*
#cgo CFLAGS: -O3
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

// The bf16 GEMM's C kernels (see bf16.go for the contract). w is packed:
// panel p holds (K2, 16) uint32 pairs; x holds each row's pairs (ldx per
// row). Three kernels per block shape: VDPBF16PS (AVX512_BF16), and the
// same order as two FMAs per pair on AVX-512 or AVX2, run with MXCSR's FTZ
// and DAZ bits set as the instruction does. A kernel runs kn pairs of its
// rows × panels, from the bias (or +0) or, with acc0, from out: the driver
// splits K into blocks whose partial sums wait in out between blocks, which
// keeps every element's chain (a stored partial is a flushed float32,
// read back exactly).

#define RB_MRMAX 12
#define RB_XB 256 // rows of x per block of rljob_bf16_xcols (matmulBF16's blk)

#define RB_ARGS float *out, long ldo, const uint32_t *x, long ldx, long kn, const uint32_t *w, long ps, const float *bias, const int *nv, int acc0

// RB_DP512(MR, NP): VDPBF16PS, rows m..m+MR-1 × panels p..p+NP-1.
#define RB_DP512(MR, NP) \
__attribute__((target("avx512f,avx512bf16"))) static void rb_dp512_##MR##_##NP(RB_ARGS) { \
	__m512 acc[MR][NP]; \
	__mmask16 mk[NP]; \
	_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) { \
		mk[i] = nv[i] >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv[i]) - 1); \
		__m512 b0 = bias ? _mm512_maskz_loadu_ps(mk[i], bias + 16 * i) : _mm512_setzero_ps(); \
		_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r][i] = acc0 ? _mm512_maskz_loadu_ps(mk[i], out + r * ldo + 16 * i) : b0; \
	} \
	for (long k = 0; k < kn; k++) { \
		__m512i wv[NP]; \
		_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) wv[i] = _mm512_loadu_si512((const void *)(w + i * ps + k * 16)); \
		_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) { \
			__m512i xv = _mm512_set1_epi32((int)x[r * ldx + k]); \
			_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) acc[r][i] = _mm512_dpbf16_ps(acc[r][i], (__m512bh)xv, (__m512bh)wv[i]); \
		} \
	} \
	_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) \
		_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) _mm512_mask_storeu_ps(out + r * ldo + 16 * i, mk[i], acc[r][i]); \
}

// RB_FMA512(MR, NP): the same order as two FMAs per pair (odd, then even).
// Its x is the rows' pairs expanded to float32 (rb_expand: [2i] the odd
// element, [2i+1] the even, ldx floats a row), so each broadcast is a
// load; only the weights are split in registers, once per k for all MR
// rows. (Splitting each row's pair too took two vector ALU operations per
// row and k, beside the FMAs' ports: at 512 rows on an Intel Xeon, 95–101
// GFLOP per CPU-second against 127–143 now; docs/kernels.md.)
#define RB_FMA512(MR, NP) \
__attribute__((target("avx512f"))) static void rb_fma512_##MR##_##NP(RB_ARGS) { \
	const float *xf = (const float *)x; \
	__m512 acc[MR][NP]; \
	__mmask16 mk[NP]; \
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000); \
	_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) { \
		mk[i] = nv[i] >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv[i]) - 1); \
		__m512 b0 = bias ? _mm512_maskz_loadu_ps(mk[i], bias + 16 * i) : _mm512_setzero_ps(); \
		_Pragma("GCC unroll 12") for (int r = 0; r < MR; r++) acc[r][i] = acc0 ? _mm512_maskz_loadu_ps(mk[i], out + r * ldo + 16 * i) : b0; \
	} \
	for (long k = 0; k < kn; k++) { \
		__m512 wo[NP], we[NP]; \
		_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) { \
			__m512i v = _mm512_loadu_si512((const void *)(w + i * ps + k * 16)); \
			wo[i] = _mm512_castsi512_ps(_mm512_and_si512(v, hi)); \
			we[i] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); \
		} \
		_Pragma("GCC unroll 12") for (int r = 0; r < MR; r++) { \
			__m512 xo = _mm512_set1_ps(xf[r * ldx + 2 * k]), xe = _mm512_set1_ps(xf[r * ldx + 2 * k + 1]); \
			_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) { \
				acc[r][i] = _mm512_fmadd_ps(xo, wo[i], acc[r][i]); \
				acc[r][i] = _mm512_fmadd_ps(xe, we[i], acc[r][i]); \
			} \
		} \
	} \
	_Pragma("GCC unroll 12") for (int r = 0; r < MR; r++) \
		_Pragma("GCC unroll 8") for (int i = 0; i < NP; i++) _mm512_mask_storeu_ps(out + r * ldo + 16 * i, mk[i], acc[r][i]); \
}

// RB_FMA256(MR, NP): the AVX2 twin, a panel as two ymm halves.
#define RB_FMA256(MR, NP) \
__attribute__((target("avx2,fma"))) static void rb_fma256_##MR##_##NP(RB_ARGS) { \
	__m256 acc[MR][2 * NP]; \
	__m256i mk[2 * NP]; \
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); \
	const __m256i hi = _mm256_set1_epi32((int)0xffff0000); \
	_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) { \
		int v = nv[i / 2] - 8 * (i % 2); \
		mk[i] = _mm256_cmpgt_epi32(_mm256_set1_epi32(v), lane); \
		__m256 b0 = bias ? _mm256_maskload_ps(bias + 8 * i, mk[i]) : _mm256_setzero_ps(); \
		_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r][i] = acc0 ? _mm256_maskload_ps(out + r * ldo + 8 * i, mk[i]) : b0; \
	} \
	for (long k = 0; k < kn; k++) { \
		__m256 wo[2 * NP], we[2 * NP]; \
		_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) { \
			__m256i v = _mm256_loadu_si256((const __m256i *)(w + (i / 2) * ps + k * 16 + 8 * (i % 2))); \
			wo[i] = _mm256_castsi256_ps(_mm256_and_si256(v, hi)); \
			we[i] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); \
		} \
		_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) { \
			__m256i xv = _mm256_set1_epi32((int)x[r * ldx + k]); \
			__m256 xo = _mm256_castsi256_ps(_mm256_and_si256(xv, hi)), xe = _mm256_castsi256_ps(_mm256_slli_epi32(xv, 16)); \
			_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) { \
				acc[r][i] = _mm256_fmadd_ps(xo, wo[i], acc[r][i]); \
				acc[r][i] = _mm256_fmadd_ps(xe, we[i], acc[r][i]); \
			} \
		} \
	} \
	_Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) \
		_Pragma("GCC unroll 16") for (int i = 0; i < 2 * NP; i++) _mm256_maskstore_ps(out + r * ldo + 8 * i, mk[i], acc[r][i]); \
}

typedef void (*rb_kern)(RB_ARGS);

// Blockings. VDPBF16PS: up to 8 rows × 3 panels, 24 accumulators of the
// 32 zmm plus 3 weights and a broadcast, 11 loads per 24 dot products (a
// row block of 6 × 2 needs 8 per 12). The FMA twins, whose weights take
// two registers each (odd and even halves): AVX-512 up to 12 rows × 2
// panels on expanded pairs (MR·NP + 2·NP + the mask ≤ 32 zmm), AVX2 up to
// 6 rows × 1 panel. (The AVX2 twin on expanded pairs, 4 rows × 1 panel to
// fit 16 ymm, was no faster on the Xeon's AVX2, so it splits each row's
// pair in registers.) rb_np, the
// panels per call at MR rows, never grows with MR, so a tile's blocks of
// MR and MR−1 rows share one panel count.
RB_DP512(1, 1) RB_DP512(1, 2) RB_DP512(1, 3) RB_DP512(1, 4) RB_DP512(1, 5) RB_DP512(1, 6) RB_DP512(1, 7) RB_DP512(1, 8)
RB_DP512(2, 1) RB_DP512(2, 2) RB_DP512(2, 3) RB_DP512(2, 4) RB_DP512(2, 5) RB_DP512(2, 6)
RB_DP512(3, 1) RB_DP512(3, 2) RB_DP512(3, 3) RB_DP512(3, 4) RB_DP512(3, 5) RB_DP512(3, 6)
RB_DP512(4, 1) RB_DP512(4, 2) RB_DP512(4, 3) RB_DP512(4, 4) RB_DP512(4, 5)
RB_DP512(5, 1) RB_DP512(5, 2) RB_DP512(5, 3) RB_DP512(5, 4)
RB_DP512(6, 1) RB_DP512(6, 2) RB_DP512(6, 3)
RB_DP512(7, 1) RB_DP512(7, 2) RB_DP512(7, 3)
RB_DP512(8, 1) RB_DP512(8, 2) RB_DP512(8, 3)
RB_FMA512(1, 1) RB_FMA512(1, 2) RB_FMA512(1, 3) RB_FMA512(1, 4) RB_FMA512(1, 5) RB_FMA512(1, 6) RB_FMA512(1, 7) RB_FMA512(1, 8)
RB_FMA512(2, 1) RB_FMA512(2, 2) RB_FMA512(2, 3) RB_FMA512(2, 4) RB_FMA512(2, 5) RB_FMA512(2, 6)
RB_FMA512(3, 1) RB_FMA512(3, 2) RB_FMA512(3, 3) RB_FMA512(3, 4) RB_FMA512(3, 5)
RB_FMA512(4, 1) RB_FMA512(4, 2) RB_FMA512(4, 3) RB_FMA512(4, 4)
RB_FMA512(5, 1) RB_FMA512(5, 2) RB_FMA512(5, 3) RB_FMA512(5, 4)
RB_FMA512(6, 1) RB_FMA512(6, 2) RB_FMA512(6, 3)
RB_FMA512(7, 1) RB_FMA512(7, 2) RB_FMA512(7, 3)
RB_FMA512(8, 1) RB_FMA512(8, 2)
RB_FMA512(9, 1) RB_FMA512(9, 2)
RB_FMA512(10, 1) RB_FMA512(10, 2)
RB_FMA512(11, 1) RB_FMA512(11, 2)
RB_FMA512(12, 1) RB_FMA512(12, 2)
RB_FMA256(1, 1) RB_FMA256(1, 2)
RB_FMA256(2, 1) RB_FMA256(2, 2)
RB_FMA256(3, 1)
RB_FMA256(4, 1)
RB_FMA256(5, 1)
RB_FMA256(6, 1)

static const rb_kern rb_tab[3][RB_MRMAX + 1][9] = {
	{{0}, {0, rb_fma256_1_1, rb_fma256_1_2}, {0, rb_fma256_2_1, rb_fma256_2_2}, {0, rb_fma256_3_1}, {0, rb_fma256_4_1}, {0, rb_fma256_5_1}, {0, rb_fma256_6_1}},
	{{0},
		{0, rb_fma512_1_1, rb_fma512_1_2, rb_fma512_1_3, rb_fma512_1_4, rb_fma512_1_5, rb_fma512_1_6, rb_fma512_1_7, rb_fma512_1_8},
		{0, rb_fma512_2_1, rb_fma512_2_2, rb_fma512_2_3, rb_fma512_2_4, rb_fma512_2_5, rb_fma512_2_6},
		{0, rb_fma512_3_1, rb_fma512_3_2, rb_fma512_3_3, rb_fma512_3_4, rb_fma512_3_5},
		{0, rb_fma512_4_1, rb_fma512_4_2, rb_fma512_4_3, rb_fma512_4_4},
		{0, rb_fma512_5_1, rb_fma512_5_2, rb_fma512_5_3, rb_fma512_5_4},
		{0, rb_fma512_6_1, rb_fma512_6_2, rb_fma512_6_3},
		{0, rb_fma512_7_1, rb_fma512_7_2, rb_fma512_7_3},
		{0, rb_fma512_8_1, rb_fma512_8_2},
		{0, rb_fma512_9_1, rb_fma512_9_2},
		{0, rb_fma512_10_1, rb_fma512_10_2},
		{0, rb_fma512_11_1, rb_fma512_11_2},
		{0, rb_fma512_12_1, rb_fma512_12_2}},
	{{0}, {0, rb_dp512_1_1, rb_dp512_1_2, rb_dp512_1_3, rb_dp512_1_4, rb_dp512_1_5, rb_dp512_1_6, rb_dp512_1_7, rb_dp512_1_8},
		{0, rb_dp512_2_1, rb_dp512_2_2, rb_dp512_2_3, rb_dp512_2_4, rb_dp512_2_5, rb_dp512_2_6},
		{0, rb_dp512_3_1, rb_dp512_3_2, rb_dp512_3_3, rb_dp512_3_4, rb_dp512_3_5, rb_dp512_3_6},
		{0, rb_dp512_4_1, rb_dp512_4_2, rb_dp512_4_3, rb_dp512_4_4, rb_dp512_4_5},
		{0, rb_dp512_5_1, rb_dp512_5_2, rb_dp512_5_3, rb_dp512_5_4}, {0, rb_dp512_6_1, rb_dp512_6_2, rb_dp512_6_3},
		{0, rb_dp512_7_1, rb_dp512_7_2, rb_dp512_7_3}, {0, rb_dp512_8_1, rb_dp512_8_2, rb_dp512_8_3}},
};
static const int rb_np[3][RB_MRMAX + 1] = {{0, 2, 2, 1, 1, 1, 1}, {0, 8, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2, 2}, {0, 8, 6, 6, 5, 4, 3, 3, 3}};
static const int rb_mrmax[3] = {6, 12, 8};

// rb_block runs rows [m, m+mr) × panels [p, p+np) over pairs [k0, k0+kn);
// xk is row m's pair k0, rows ldx apart.
static inline void rb_block(int kind, float *out, const uint32_t *xk, long ldx, const uint32_t *w, const float *bias,
	int acc, long N, long K2, long m, int mr, long p, int np, long k0, long kn) {
	int nv[8];
	for (int i = 0; i < np; i++) {
		long v = N - 16 * (p + i);
		nv[i] = v < 16 ? (int)v : 16;
	}
	rb_tab[kind][mr][np](out + m * N + 16 * p, N, xk, ldx, kn, w + p * 16 * K2 + k0 * 16, 16 * K2,
		bias ? bias + 16 * p : 0, nv, acc);
}

// rb_xbuf is this thread's buffer of expanded pairs for the AVX-512 FMA
// twin (grown, never freed: one per thread that ever ran a bf16 product;
// at most a tile's rows × one block of pairs, 96 × 768 × 8 bytes at the
// Qwen shapes, or 12 rows × all pairs).
static __thread uint32_t *rb_xbuf;
static __thread long rb_xcap;

// rb_expand writes n pairs of x as float32 pairs: dst[2i] the odd element
// (the high half), dst[2i+1] the even one.
__attribute__((target("avx512f"))) static void rb_expand(uint32_t *restrict dst, const uint32_t *restrict x, long n) {
	for (long i = 0; i < n; i++) {
		dst[2 * i] = x[i] & 0xffff0000u;
		dst[2 * i + 1] = x[i] << 16;
	}
}

// rb_xblock returns rows [m0, m0+rows) × pairs [k0, k0+kn) of x (M, K2)
// as the kernel of kind reads them, row m0's pair k0 first, rows *ldx
// apart: x itself, or for the AVX-512 FMA twin its float32 pairs in
// rb_xbuf (rb_expand; exact: a bf16 is a float32's upper half). NULL when
// rb_xbuf cannot grow.
static const uint32_t *rb_xblock(int kind, const uint32_t *x, long K2, long m0, long rows, long k0, long kn, long *ldx) {
	const uint32_t *xk = x + m0 * K2 + k0;
	*ldx = K2;
	if (kind != 1) return xk;
	if (rows * kn > rb_xcap) {
		free(rb_xbuf);
		rb_xbuf = aligned_alloc(64, (size_t)((rows * kn + 15) / 16 * 16) * 8);
		rb_xcap = rb_xbuf ? (rows * kn + 15) / 16 * 16 : 0;
		if (!rb_xbuf) return 0;
	}
	for (long r = 0; r < rows; r++) rb_expand(rb_xbuf + r * 2 * kn, xk + r * K2, kn);
	*ldx = 2 * kn;
	return rb_xbuf;
}

// rljob_bf16gemm computes out[m, 16p0 .. min(N, 16p1)) for m in [m0, m1)
// with kernel kind (2 VDPBF16PS, 1 AVX-512 FMAs, 0 AVX2 FMAs). out (M, N),
// x (M, K2) pairs, w packed (panel stride 16·K2), bias (N) or NULL. The
// rows go in nb blocks of mr or mr−1 rows. With one block of pairs
// (K2 ≤ kc), each row block runs across the panels (its x stays in L1).
// Otherwise, for each block of kc = kcp/np pairs, each group of np panels
// runs down the row blocks: its kcp·64 bytes of weights stay in cache (96
// KiB, L2, at bf16.go's bf16KC) while the rows' pairs stream past, and the
// partial sums wait in out. With acc and one block of pairs, the next row
// block's partial sums are prefetched a call ahead. The AVX-512 FMA twin
// reads each block of pairs expanded (rb_xblock). Returns -1 when the
// expanded rows cannot be allocated, else 0.
static int rljob_bf16gemm(int kind, float *out, const uint32_t *x, const uint32_t *w, const float *bias, int acc,
	long N, long K2, long m0, long m1, long p0, long p1, long kcp) {
	long rows = m1 - m0, mrmax = rb_mrmax[kind], ldx;
	long nb = (rows + mrmax - 1) / mrmax;
	int mr = (int)((rows + nb - 1) / nb), npmax = rb_np[kind][mr];
	long kc = nb > 1 ? kcp / npmax : K2;
	if (kc < 32) kc = 32;
	if (kc > K2) kc = K2;
	unsigned int csr = _mm_getcsr();
	if (kind != 2) _mm_setcsr(csr | 0x8040); // FTZ | DAZ, as VDPBF16PS
	for (long k0 = 0; k0 < K2; k0 += kc) {
		long kn = K2 - k0 < kc ? K2 - k0 : kc;
		const uint32_t *xk = rb_xblock(kind, x, K2, m0, rows, k0, kn, &ldx);
		if (!xk) {
			_mm_setcsr(csr);
			return -1;
		}
		if (kn == K2) {
			for (long b = 0; b < nb; b++) {
				long m = m0 + b * rows / nb, me = m0 + (b + 1) * rows / nb, mn = m0 + (b + 2) * rows / nb;
				for (long p = p0; p < p1; p += npmax) {
					int np = p1 - p < npmax ? (int)(p1 - p) : npmax;
					if (acc && b + 1 < nb) // the next row block's partial sums, one call ahead
						for (long r = me; r < mn; r++)
							for (int i = 0; i < np; i++) _mm_prefetch((const char *)(out + r * N + 16 * (p + i)), _MM_HINT_T0);
					rb_block(kind, out, xk + (m - m0) * ldx, ldx, w, bias, acc, N, K2, m, (int)(me - m), p, np, 0, K2);
				}
			}
			continue;
		}
		for (long p = p0; p < p1; p += npmax) {
			int np = p1 - p < npmax ? (int)(p1 - p) : npmax;
			for (long b = 0; b < nb; b++) {
				long m = m0 + b * rows / nb, me = m0 + (b + 1) * rows / nb;
				rb_block(kind, out, xk + (m - m0) * ldx, ldx, w, k0 ? 0 : bias, acc || k0, N, K2, m, (int)(me - m), p, np, k0, kn);
			}
		}
	}
	_mm_setcsr(csr);
	return 0;
}

// The conversions to bf16 pairs (bf16.go's BF16 on the bits, so every
// set gives the same bits); plain C that the compiler vectorises.
static inline uint32_t rl_bf16(float f) {
	uint32_t u;
	__builtin_memcpy(&u, &f, 4);
	uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
	r = (u & 0x7f800000u) == 0 ? (u >> 16) & 0x8000u : r;
	r = (u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) & 0xffffu : r;
	return r;
}

// rljob_bf16_xrows: x[m·K2 + i] = pair(a[m·lda + 2i], a[m·lda + 2i+1]) for
// m in [m0, m1) (0 past K).
static void rljob_bf16_xrows(uint32_t *x, const float *a, long K, long lda, long m0, long m1) {
	long K2 = (K + 1) / 2, h = K / 2;
	for (long m = m0; m < m1; m++) {
		const float *r = a + m * lda;
		uint32_t *d = x + m * K2;
		for (long i = 0; i < h; i++) d[i] = rl_bf16(r[2 * i]) | rl_bf16(r[2 * i + 1]) << 16;
		if (K & 1) d[h] = rl_bf16(r[K - 1]);
	}
}

// rljob_bf16_xcols: the same for element (m, k) = a[k·ldk + m], RB_XB
// rows at a time (1 KiB runs of each row of a: 256 measured faster than
// 64 and 1024 on the lm_head's dW), each block in tiles of 16 rows × 16
// pairs: a tile's pairs are converted from 64-byte runs of two rows of a
// and stored as 64-byte runs of 16 rows of x (t[ii][j] is pair i0+ii of
// row mt+j; storing each pair where it
// goes, 4 bytes to a row, was the slower part: BenchmarkBF16Pack/xcols).
#define RB_XCOLS(NAME, ATTR) \
ATTR static void NAME(uint32_t *x, const float *a, long K, long ldk, long m0, long m1) { \
	long K2 = (K + 1) / 2; \
	uint32_t t[16][16]; \
	for (long mb = m0; mb < m1; mb += RB_XB) { \
		long me = m1 - mb < RB_XB ? m1 : mb + RB_XB; \
		for (long i0 = 0; i0 < K2; i0 += 16) { \
			long ni = K2 - i0 < 16 ? K2 - i0 : 16; \
			for (long mt = mb; mt < me; mt += 16) { \
				long n = me - mt < 16 ? me - mt : 16; \
				for (long ii = 0; ii < ni; ii++) { \
					long i = i0 + ii; \
					const float *r0 = a + 2 * i * ldk + mt, *r1 = r0 + ldk; \
					if (2 * i + 1 < K) \
						for (long j = 0; j < n; j++) t[ii][j] = rl_bf16(r0[j]) | rl_bf16(r1[j]) << 16; \
					else \
						for (long j = 0; j < n; j++) t[ii][j] = rl_bf16(r0[j]); \
				} \
				for (long j = 0; j < n; j++) { \
					uint32_t *d = x + (mt + j) * K2 + i0; \
					for (long ii = 0; ii < ni; ii++) d[ii] = t[ii][j]; \
				} \
			} \
		} \
	} \
}
RB_XCOLS(rljob_bf16_xcols512, __attribute__((target("avx512f,avx512bw,avx512vl"))))
RB_XCOLS(rljob_bf16_xcols, )

static void rljob_bf16_xcolsl(int level, uint32_t *x, const float *a, long K, long ldk, long m0, long m1) {
	if (level == 2) rljob_bf16_xcols512(x, a, K, ldk, m0, m1);
	else rljob_bf16_xcols(x, a, K, ldk, m0, m1);
}

// rljob_bf16_packrows: panels [p0, p1) of the (N, K) weight w[n·ldn + k].
static void rljob_bf16_packrows(uint32_t *dst, const float *w, long N, long K, long ldn, long p0, long p1) {
	long K2 = (K + 1) / 2, h = K / 2;
	for (long p = p0; p < p1; p++) {
		uint32_t *d = dst + p * 16 * K2;
		for (long j = 0; j < 16; j++) {
			long n = 16 * p + j;
			if (n >= N) {
				for (long i = 0; i < K2; i++) d[i * 16 + j] = 0;
				continue;
			}
			const float *r = w + n * ldn;
			for (long i = 0; i < h; i++) d[i * 16 + j] = rl_bf16(r[2 * i]) | rl_bf16(r[2 * i + 1]) << 16;
			if (K & 1) d[h * 16 + j] = rl_bf16(r[K - 1]);
		}
	}
}

// rljob_bf16_packcols: pairs [i0, i1) of every panel of the (N, K) weight
// whose element (n, k) is w[k·ldk + n]: rows 2i and 2i+1 of w are read
// whole, once (panel by panel, each would be read 64 bytes at a time).
#define RB_PACKCOLS(NAME, ATTR) \
ATTR static void NAME(uint32_t *dst, const float *w, long N, long K, long ldk, long i0, long i1) { \
	long K2 = (K + 1) / 2, P = (N + 15) / 16; \
	for (long i = i0; i < i1; i++) { \
		const float *r0 = w + 2 * i * ldk, *r1 = r0 + ldk; \
		int odd = 2 * i + 1 < K; \
		for (long p = 0; p < P; p++) { \
			uint32_t *o = dst + p * 16 * K2 + i * 16; \
			long n0 = 16 * p, nv = N - n0 < 16 ? N - n0 : 16; \
			if (nv == 16 && odd) { \
				for (long j = 0; j < 16; j++) o[j] = rl_bf16(r0[n0 + j]) | rl_bf16(r1[n0 + j]) << 16; \
				continue; \
			} \
			for (long j = 0; j < 16; j++) { \
				uint32_t v = 0; \
				if (j < nv) { \
					v = rl_bf16(r0[n0 + j]); \
					if (odd) v |= rl_bf16(r1[n0 + j]) << 16; \
				} \
				o[j] = v; \
			} \
		} \
	} \
}
RB_PACKCOLS(rljob_bf16_packcols512, __attribute__((target("avx512f,avx512bw,avx512vl"))))
RB_PACKCOLS(rljob_bf16_packcols0, )

static void rljob_bf16_packcols(int level, uint32_t *dst, const float *w, long N, long K, long ldk, long i0, long i1) {
	if (level == 2) rljob_bf16_packcols512(dst, w, N, K, ldk, i0, i1);
	else rljob_bf16_packcols0(dst, w, N, K, ldk, i0, i1);
}


*/
import "C"

import "unsafe"

// bf16GemmRange computes out rows [m0, m1) × panels [p0, p1) (bf16.go)
// with the kernel set in use.
func bf16GemmRange(out []float32, x []uint32, pw *PackedWeightBF16, bias []float32, acc bool, m0, m1, p0, p1 int) {
	kind := 0
	switch biCurLevel {
	case 0:
		bf16GemmRangeGo(out, x, pw, bias, acc, m0, m1, p0, p1)
		return
	case 2:
		kind = 1
		if bf16Native {
			kind = 2
		}
	}
	var bp *C.float
	if bias != nil {
		bp = cf(bias)
	}
	ac := 0
	if acc {
		ac = 1
	}
	if C.rljob_bf16gemm(C.int(kind), cf(out), cu(x), cu(pw.data), bp, C.int(ac),
		C.long(pw.N), C.long(pw.pairs()), C.long(m0), C.long(m1), C.long(p0), C.long(p1), C.long(bf16KC)) < 0 {
		panic(errBF16Rows)
	}
	yieldAfter((m1 - m0) * (p1 - p0) * biPanel * 2 * pw.pairs())
}

// errBF16Rows is the panic when C cannot allocate the AVX-512 FMA twin's
// expanded rows (rb_xblock: a tile's rows × one K block × 8 bytes per
// thread).
const errBF16Rows = "kernels: bf16 GEMM: out of memory for the expanded rows of the left-hand side"

func cu(x []uint32) *C.uint32_t { return (*C.uint32_t)(unsafe.Pointer(&x[0])) }

// bf16XRange fills the bf16 pairs of rows [m0, m1) of the (M, K) input
// whose element (m, k) is a[m·ldm + k·ldk] (ldm or ldk is 1).
func bf16XRange(x []uint32, a []float32, K, ldm, ldk, m0, m1 int) {
	if biCurLevel == 0 || m0 >= m1 {
		bf16XRangeGo(x, a, K, ldm, ldk, m0, m1)
		return
	}
	if ldk == 1 {
		C.rljob_bf16_xrows(cu(x), cf(a), C.long(K), C.long(ldm), C.long(m0), C.long(m1))
	} else {
		C.rljob_bf16_xcolsl(C.int(biCurLevel), cu(x), cf(a), C.long(K), C.long(ldk), C.long(m0), C.long(m1))
	}
}

// bf16PackRange packs panels [p0, p1) of the (N, K) weight whose element
// (n, k) is w[n·ldn + k].
func bf16PackRange(dst []uint32, w []float32, N, K, ldn, ldk, p0, p1 int) {
	if biCurLevel == 0 || p0 >= p1 || ldk != 1 {
		bf16PackRangeGo(dst, w, N, K, ldn, ldk, p0, p1)
		return
	}
	C.rljob_bf16_packrows(cu(dst), cf(w), C.long(N), C.long(K), C.long(ldn), C.long(p0), C.long(p1))
}

// bf16PackColsRange packs pairs [i0, i1) of every panel of the (N, K)
// weight whose element (n, k) is w[k·ldk + n].
func bf16PackColsRange(dst []uint32, w []float32, N, K, ldk, i0, i1 int) {
	if biCurLevel == 0 || i0 >= i1 {
		bf16PackColsRangeGo(dst, w, N, K, ldk, i0, i1)
		return
	}
	C.rljob_bf16_packcols(C.int(biCurLevel), cu(dst), cf(w), C.long(N), C.long(K), C.long(ldk), C.long(i0), C.long(i1))
}
