//go:build cgo && amd64

package kernels

/*
#include <immintrin.h>
#include <time.h>

static int rljob_has_bf16(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512bf16");
}

static double rb_now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

// RB_RATE: the rate of a bf16 dot product on this core, n rounds of 12
// independent chains of OP (MACS multiply-adds an instruction: 32 for
// VDPBF16PS, 16 for an FMA), in multiply-adds per nanosecond.
#define RB_RATE(NAME, ATTR, T, INIT, OP, MACS) \
ATTR static double NAME(long n) { \
	__m512 a[12]; \
	T x = INIT; \
	_Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i); \
	double t = rb_now(); \
	for (long k = 0; k < n; k++) { \
		_Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = OP; \
		__asm__ volatile("" : "+v"(x)); \
	} \
	t = rb_now() - t; \
	float s = 0; \
	for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(a[i]); \
	__asm__ volatile("" : : "x"(s)); \
	return t > 0 ? (double)n * 12 * MACS / t : 0; \
}
RB_RATE(rb_rate_dp, __attribute__((target("avx512f,avx512bf16"))), __m512bh, (__m512bh)_mm512_set1_epi32(0x3f803f80),
	_mm512_dpbf16_ps(a[i], x, x), 32)
RB_RATE(rb_rate_fma, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps(1.0f), _mm512_fmadd_ps(x, x, a[i]), 16)

// rljob_dot_rates: the best of reps alternated timings of n rounds of
// VDPBF16PS and 2n of FMAs (the same multiply-adds), in *dp and *fma.
static void rljob_dot_rates(long n, int reps, double *dp, double *fma) {
	*dp = 0, *fma = 0;
	for (int r = 0; r < reps; r++) {
		double d = rb_rate_dp(n), f = rb_rate_fma(2 * n);
		if (d > *dp) *dp = d;
		if (f > *fma) *fma = f;
	}
}
*/
import "C"

import (
	"fmt"
	"strings"
)

// bf16HasDP is whether the CPU has AVX512_BF16. bf16Native is whether the
// AVX-512 set runs VDPBF16PS: where the CPU has it and it is the faster
// (dpFaster, timed once at start); otherwise the AVX-512 FMA twin,
// which gives the same bits. Tests set it to check each kernel.
var (
	bf16HasDP    = C.rljob_has_bf16() != 0
	bf16DPFaster = bf16HasDP && dpFaster()
	bf16Native   = bf16DPFaster
)

// dpFaster is whether VDPBF16PS does more multiply-adds a second than FMAs
// on this core: the best of 5 alternated timings of each, 2,048 rounds of
// 12 VDPBF16PS (0.15 ms in all, measured on the Xeon). VDPBF16PS is twice
// the FMAs' rate on AMD's Zen 5 (issue 16's figure), half on Intel's Xeon
// (Emerald Rapids).
func dpFaster() bool {
	dp, fma := bf16DotRates(2048, 5)
	return dp > fma
}

// bf16DotRates times n rounds of 12 independent VDPBF16PS chains and 2n of
// 12 FMA chains (the same multiply-adds), reps times alternated, and
// returns the best rate of each in multiply-adds per nanosecond. Only on a
// CPU with AVX512_BF16.
func bf16DotRates(n, reps int) (dp, fma float64) {
	var d, f C.double
	C.rljob_dot_rates(C.long(n), C.int(reps), &d, &f)
	return float64(d), float64(f)
}

// BF16Native reports whether bf16 matmuls run the VDPBF16PS instruction
// (kernel set avx512 on a CPU with AVX512_BF16 where it outruns FMAs).
func BF16Native() bool { return bf16Native && biCurLevel == 2 }

// BF16Dot names what runs bf16 matmuls' dot products with the kernel set
// in use: "VDPBF16PS" or "FMAs", and on a CPU that has VDPBF16PS which of
// the two is the faster there. The bits are the same either way.
func BF16Dot() string {
	switch {
	case BF16Native() && bf16DPFaster:
		return "VDPBF16PS"
	case BF16Native():
		return "VDPBF16PS, slower than FMAs here"
	case bf16HasDP && biCurLevel == 2 && bf16DPFaster:
		return "FMAs, slower than VDPBF16PS here"
	case bf16HasDP && biCurLevel == 2:
		return "FMAs, faster than VDPBF16PS here"
	}
	return "FMAs"
}

// BF16Dots lists the dot products bf16 matmuls can run on here: "fma",
// and "vdpbf16ps" on a CPU with AVX512_BF16.
func BF16Dots() []string {
	if bf16HasDP {
		return []string{"fma", "vdpbf16ps"}
	}
	return []string{"fma"}
}

// UseBF16Dot makes the avx512 set run bf16's dot products on VDPBF16PS
// ("vdpbf16ps") or on its FMA twin ("fma"); "" restores start-up's
// choice, the faster. The bits are the same. A name that is not one, or
// vdpbf16ps on a CPU without AVX512_BF16, is an error naming those it can
// run. Not safe while a kernel runs.
func UseBF16Dot(name string) error {
	switch {
	case name == "":
		bf16Native = bf16DPFaster
	case name == "fma":
		bf16Native = false
	case name == "vdpbf16ps" && bf16HasDP:
		bf16Native = true
	case name == "vdpbf16ps":
		return fmt.Errorf("bf16 dot product %q is not available on this CPU (no AVX512_BF16); it can run fma", name)
	default:
		return fmt.Errorf("unknown bf16 dot product %q; this CPU can run %s", name, strings.Join(BF16Dots(), ", "))
	}
	return nil
}
