// Go's float semantics on the device: max, math.Exp and math.Log as Go
// computes them on amd64, kernels/expf.go's expf and sigmoid. Included by
// common.cuh; also compiled on the host by kernels/cuda/internal/gomathcheck
// (with the intrinsics mapped to plain IEEE operations), whose test checks
// these ports against Go's own functions bit for bit without a GPU.
#pragma once
#ifndef RJ_HOSTCHECK
#define RJ_HD __device__ __forceinline__
#endif

// gomaxf is Go's max for float32: NaN if either is NaN, max(-0, +0) = +0.
RJ_HD float gomaxf(float a, float b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == 0.0f && b == 0.0f) return __int_as_float(__float_as_int(a) & __float_as_int(b));
  return a > b ? a : b;
}

// goexp is math.Exp(x) as Go computes it on amd64 with AVX and FMA
// (src/math/exp_amd64.s, the avxfma path): every step of the assembly, in
// order, with its FMAs as fma() and its other operations rounded one by one.
RJ_HD double goexp(double x) {
  const double LOG2E = 1.4426950408889634073599246810018920;
  const double LN2U = 0.69314718055966295651160180568695068359375;
  const double LN2L = 0.28235290563031577122588448175013436025525412068e-12;
  const double Overflow = 7.09782712893384e+02;
  long long bits = __double_as_longlong(x);
  long long mag = bits & 0x7fffffffffffffffLL;
  if (mag >= 0x7ff0000000000000LL) {  // not finite
    if ((unsigned long long)bits == 0xfff0000000000000ULL) return 0.0;  // -Inf
    return x;  // NaN or +Inf
  }
  if (x > Overflow) return __longlong_as_double(0x7ff0000000000000LL);
  double t = __dmul_rn(LOG2E, x);
  int e = __double2int_rn(t);  // CVTSD2SL, round to nearest even
  double fe = (double)e;
  double r = fma(-LN2U, fe, x);
  r = fma(-LN2L, fe, r);
  r = __dmul_rn(r, 0.0625);
  double p = 2.4801587301587301587e-5;
  p = fma(p, r, 1.9841269841269841270e-4);
  p = fma(p, r, 1.3888888888888888889e-3);
  p = fma(p, r, 8.3333333333333333333e-3);
  p = fma(p, r, 4.1666666666666666667e-2);
  p = fma(p, r, 1.6666666666666666667e-1);
  p = fma(p, r, 0.5);
  p = fma(p, r, 1.0);
  double x0 = __dmul_rn(r, p);
  double x1 = __dadd_rn(x0, 2.0);
  x0 = __dmul_rn(x0, x1);
  x1 = __dadd_rn(x0, 2.0);
  x0 = __dmul_rn(x0, x1);
  x1 = __dadd_rn(x0, 2.0);
  x0 = __dmul_rn(x0, x1);
  x1 = __dadd_rn(x0, 2.0);
  x0 = fma(x0, x1, 1.0);
  // ldexp
  int be = e + 0x3ff;
  if (be <= 0) {
    if (be < -52) return 0.0;
    be += 0x3fe;
    x0 = __dmul_rn(x0, __longlong_as_double((long long)be << 52));
    return __dmul_rn(x0, __longlong_as_double(1LL << 52));
  }
  if (be >= 0x7ff) return __longlong_as_double(0x7ff0000000000000LL);
  return __dmul_rn(x0, __longlong_as_double((long long)be << 52));
}

// golog is math.Log(x) as Go computes it on amd64 (src/math/log_amd64.s),
// operation by operation (that assembly has no FMA).
RJ_HD double golog(double x) {
  const double HSqrt2 = 7.07106781186547524401e-01;
  const double Ln2Hi = 6.93147180369123816490e-01;
  const double Ln2Lo = 1.90821492927058770002e-10;
  const double L1 = 6.666666666666735130e-01, L2 = 3.999999999940941908e-01;
  const double L3 = 2.857142874366239149e-01, L4 = 2.222219843214978396e-01;
  const double L5 = 1.818357216161805012e-01, L6 = 1.531383769920937332e-01;
  const double L7 = 1.479819860511658591e-01;
  long long bits = __double_as_longlong(x);
  if ((bits & 0x7fffffffffffffffLL) == 0) return __longlong_as_double(0xfff0000000000000LL);
  if (bits < 0) return __longlong_as_double(0x7ff8000000000001LL);
  if (bits >= 0x7ff0000000000000LL) return x;
  double f1 = __longlong_as_double((bits & 0x000fffffffffffffLL) | 0x3fe0000000000000LL);
  double k = (double)((int)((bits >> 52) & 0x7ff) - 0x3fe);
  // The assembly's CMPSD $5 (not-less-than) computes !(HSqrt2 < f1): it
  // halves the range for f1 <= HSqrt2 (the Go source says <; the two differ
  // only at f1 == HSqrt2, and this follows the assembly).
  if (!(HSqrt2 < f1)) {
    k = __dsub_rn(k, 1.0);
    f1 = __dmul_rn(f1, 2.0);
  }
  double f = __dsub_rn(f1, 1.0);
  double s = __ddiv_rn(f, __dadd_rn(2.0, f));
  double s2 = __dmul_rn(s, s);
  double s4 = __dmul_rn(s2, s2);
  double t1 = __dmul_rn(L7, s4);
  t1 = __dadd_rn(t1, L5);
  t1 = __dmul_rn(t1, s4);
  t1 = __dadd_rn(t1, L3);
  t1 = __dmul_rn(t1, s4);
  t1 = __dadd_rn(t1, L1);
  t1 = __dmul_rn(s2, t1);
  double t2 = __dmul_rn(L6, s4);
  t2 = __dadd_rn(t2, L4);
  t2 = __dmul_rn(t2, s4);
  t2 = __dadd_rn(t2, L2);
  t2 = __dmul_rn(s4, t2);
  double R = __dadd_rn(t1, t2);
  double hfsq = __dmul_rn(__dmul_rn(0.5, f), f);
  double a = __dmul_rn(s, __dadd_rn(hfsq, R));
  a = __dadd_rn(a, __dmul_rn(k, Ln2Lo));
  double b = __dsub_rn(__dsub_rn(hfsq, a), f);
  return __dsub_rn(__dmul_rn(k, Ln2Hi), b);
}

// goexpf is kernels/expf.go's expf (Cephes), operation by operation.
RJ_HD float goexpf(float x) {
  if (x < -87.33654f) {
    if (x < -103.97208f) return 0.0f;
    return (float)goexp((double)x);
  }
  if (!(x <= 88.37626f)) {
    if (x != x) return x;
    return (float)goexp((double)x);
  }
  float fx = __fmul_rn(x, 1.44269504088896341f);
  if (fx < 0) {
    fx = __fsub_rn(fx, 0.5f);
  } else {
    fx = __fadd_rn(fx, 0.5f);
  }
  int n = (int)fx;  // truncation, as Go's int32(fx)
  float fn = (float)n;
  float r = __fsub_rn(__fsub_rn(x, __fmul_rn(fn, 0.693359375f)), __fmul_rn(fn, -2.12194440e-4f));
  float z = __fmul_rn(r, r);
  float p = __fadd_rn(__fmul_rn(1.9875691500e-4f, r), 1.3981999507e-3f);
  p = __fadd_rn(__fmul_rn(p, r), 8.3334519073e-3f);
  p = __fadd_rn(__fmul_rn(p, r), 4.1665795894e-2f);
  p = __fadd_rn(__fmul_rn(p, r), 1.6666665459e-1f);
  p = __fadd_rn(__fmul_rn(p, r), 5.0000001201e-1f);
  p = __fadd_rn(__fadd_rn(__fmul_rn(p, z), r), 1.0f);
  return __fmul_rn(p, __int_as_float((n + 127) << 23));
}

// gosigmoid is kernels' sigmoid: 1/(1+expf(-x)).
RJ_HD float gosigmoid(float x) {
  return __fdiv_rn(1.0f, __fadd_rn(1.0f, goexpf(-x)));
}
