//go:build cgo && amd64

package kernels

/*
#include <stdint.h>
#include <string.h>

#pragma GCC optimize("O3", "fp-contract=off", "no-math-errno", "no-trapping-math")

#define RJ_W 16
#define RJ_SUF avx512
#define RJ_ATTR __attribute__((target("avx512f,avx512dq,avx512vl,avx2")))
#include "attn_probs.h"
#undef RJ_W
#undef RJ_SUF
#undef RJ_ATTR

#define RJ_W 8
#define RJ_SUF avx2
#define RJ_ATTR __attribute__((target("avx2")))
#include "attn_probs.h"

// rljob_attn_probs_block is attnProbsBlockGo's loop: rows (t, j) of s
// (row t·g+j, ld floats apart) for t in [t0, t1), j < g; flag[r] (r =
// (t−t0)·g+j) = 0 with mx[r], sum[r] set, 1 where the Go loop must do the
// row (untouched), 2 for a padding query (row cleared).
static void rljob_attn_probs_block(int level, float *s, long ld, const uint8_t *valid, long t0, long t1, long g,
		float scale, float *mx, float *sum, uint8_t *flag) {
	for (long t = t0; t < t1; t++) {
		for (long j = 0; j < g; j++) {
			long r = (t - t0) * g + j;
			float *row = s + (t * g + j) * ld;
			if (valid && !valid[t]) {
				memset(row, 0, 4 * t1);
				flag[r] = 2;
				continue;
			}
			int bad = level >= 2 ? rj_attn_probs_row_avx512(row, valid, t + 1, scale, &mx[r], &sum[r])
			                     : rj_attn_probs_row_avx2(row, valid, t + 1, scale, &mx[r], &sum[r]);
			flag[r] = bad;
			if (!bad) memset(row + t + 1, 0, 4 * (t1 - t - 1));
		}
	}
}

// rljob_attn_exp_block is attnExpBlockGo's loop: rows t in [t0, t1) of
// P (ld apart); flag[t−t0] = 1 where the Go loop must do the row
// (untouched).
static void rljob_attn_exp_block(int level, float *P, long ld, const uint8_t *valid, long t0, long t1,
		float scale, const float *lse, uint8_t *flag) {
	for (long t = t0; t < t1; t++) {
		float *row = P + t * ld;
		flag[t - t0] = 0;
		if (valid && !valid[t]) {
			memset(row, 0, 4 * t1);
			continue;
		}
		int bad = level >= 2 ? rj_attn_exp_row_avx512(row, valid, t + 1, scale, lse[t])
		                     : rj_attn_exp_row_avx2(row, valid, t + 1, scale, lse[t]);
		flag[t - t0] = bad;
		if (!bad) memset(row + t + 1, 0, 4 * (t1 - t - 1));
	}
}
// rljob_attn_probs_rows is attnProbsRows' loop: rows r < rows of s (n
// floats each, every key taking part); flag[r] = 1 where the Go loop
// must do the row (untouched).
static void rljob_attn_probs_rows(int level, float *s, long n, long rows, float scale, uint8_t *flag) {
	float mx, sum;
	for (long r = 0; r < rows; r++) {
		flag[r] = level >= 2 ? rj_attn_probs_row_avx512(s + r * n, NULL, n, scale, &mx, &sum)
		                     : rj_attn_probs_row_avx2(s + r * n, NULL, n, scale, &mx, &sum);
	}
}
*/
import "C"

import (
	"math"
	"unsafe"
)

// attnProbsBlock: see attnProbsBlockGo. With cgo on amd64, the avx512
// and avx2 kernel sets run it in C (attn_probs.h: 16 or 8 exps at a time,
// the same bits), the rows whose exps take expf's rare paths in Go.
func attnProbsBlock(s []float32, valid []bool, t0, t1, g, T int, scale float32, lse []float32, sc *attnBIScratch) {
	if biCurLevel == 0 {
		attnProbsBlockGo(s, valid, t0, t1, g, T, scale, lse)
		return
	}
	n := (t1 - t0) * g
	_ = s[(t1*g-1)*T+t1-1]
	_ = lse[(g-1)*T+t1-1]
	if cap(sc.mx) < n {
		sc.mx, sc.sum, sc.flag = make([]float32, n), make([]float32, n), make([]uint8, n)
	}
	mx, sum, flag := sc.mx[:n], sc.sum[:n], sc.flag[:n]
	C.rljob_attn_probs_block(C.int(biCurLevel), cf(s), C.long(T), boolPtr(valid, t1), C.long(t0), C.long(t1), C.long(g),
		C.float(scale), cf(mx), cf(sum), (*C.uint8_t)(unsafe.Pointer(&flag[0])))
	for t := t0; t < t1; t++ {
		for j := range g {
			r := (t-t0)*g + j
			switch flag[r] {
			case 0:
				lse[j*T+t] = mx[r] + float32(math.Log(float64(sum[r])))
			case 1:
				lse[j*T+t] = attnProbsQuery(s[(t*g+j)*T:(t*g+j)*T+t1], valid, t, scale)
			default:
				lse[j*T+t] = 0
			}
		}
	}
}

// attnExpBlock: see attnExpBlockGo; in C as attnProbsBlock.
func attnExpBlock(P []float32, valid []bool, t0, t1, T int, scale float32, lse []float32, flag []uint8) {
	if biCurLevel == 0 {
		attnExpBlockGo(P, valid, t0, t1, T, scale, lse)
		return
	}
	_ = P[(t1-1)*T+t1-1]
	_ = lse[t1-1]
	flag = flag[:t1-t0]
	C.rljob_attn_exp_block(C.int(biCurLevel), cf(P), C.long(T), boolPtr(valid, t1), C.long(t0), C.long(t1),
		C.float(scale), cf(lse), (*C.uint8_t)(unsafe.Pointer(&flag[0])))
	for t := t0; t < t1; t++ {
		if flag[t-t0] != 0 {
			attnExpQuery(P[t*T:t*T+t1], valid, t, scale, lse[t])
		}
	}
}

// attnProbsRows: see attnProbsRowsGo; in C as attnProbsBlock.
func attnProbsRows(s []float32, n, rows int, scale float32) {
	if biCurLevel == 0 {
		attnProbsRowsGo(s, n, rows, scale)
		return
	}
	_ = s[rows*n-1]
	var buf [64]uint8
	flag := buf[:]
	if rows > len(buf) {
		flag = make([]uint8, rows)
	}
	C.rljob_attn_probs_rows(C.int(biCurLevel), cf(s), C.long(n), C.long(rows), C.float(scale), (*C.uint8_t)(unsafe.Pointer(&flag[0])))
	for r := range rows {
		if flag[r] != 0 {
			attnProbsBI(s[r*n:(r+1)*n], nil, scale)
		}
	}
}

// boolPtr is valid[:n] for C (nil: every position valid).
func boolPtr(valid []bool, n int) *C.uint8_t {
	if valid == nil {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&valid[:n][0]))
}
