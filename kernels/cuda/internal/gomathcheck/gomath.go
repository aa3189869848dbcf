//go:build cgo

package gomathcheck

/*
#cgo CFLAGS: -O2
#cgo LDFLAGS: -lm
// (no -march: baseline x86-64 has no FMA instruction, so gcc cannot fuse
// a*b+c; every fma() below is libm's correctly rounded one)
#include <math.h>
#include <string.h>
#include <limits.h>

#define RJ_HOSTCHECK 1
#define RJ_HD static inline

static inline long long __double_as_longlong(double x) { long long u; memcpy(&u, &x, 8); return u; }
static inline double __longlong_as_double(long long u) { double x; memcpy(&x, &u, 8); return x; }
static inline int __float_as_int(float x) { int u; memcpy(&u, &x, 4); return u; }
static inline float __int_as_float(int u) { float x; memcpy(&x, &u, 4); return x; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
// CUDA's cvt.rni.s32.f64: round to nearest even; out of range and NaN give
// INT_MIN here as x86's CVTSD2SL does (the ports never reach +overflow).
static inline int __double2int_rn(double x) {
	double r = nearbyint(x);
	if (r != r || r < -2147483648.0 || r > 2147483647.0) return INT_MIN;
	return (int)r;
}

#include "gomath.h"
*/
import "C"

// Exp is csrc/gomath.cuh's goexp on the host.
func Exp(x float64) float64 { return float64(C.goexp(C.double(x))) }

// Log is golog on the host.
func Log(x float64) float64 { return float64(C.golog(C.double(x))) }

// Expf is goexpf on the host.
func Expf(x float32) float32 { return float32(C.goexpf(C.float(x))) }

// Sigmoid is gosigmoid on the host.
func Sigmoid(x float32) float32 { return float32(C.gosigmoid(C.float(x))) }

// Max is gomaxf on the host.
func Max(a, b float32) float32 { return float32(C.gomaxf(C.float(a), C.float(b))) }
