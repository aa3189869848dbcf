// Rotary position embedding (mirrors kernels/ops.go). cos and sin come from
// a table the host fills with Go's math.Sincos of the float32 angle
// pos·inv_freq[i] (cuda.NewRopeTable), so they have the CPU's bits; the
// rotation is then plain float32 arithmetic.
#include "common.cuh"

__global__ void rope_k(DevErr *err, float *out, const float *inp, const int *pos, const float *tab, int maxPos, int N, int NH, int HS,
                       int bwd) {
  int half = HS / 2;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)N * NH * half) return;
  int j = (int)(i % half);
  long long nh = i / half;
  int n = (int)(nh / NH);
  int p = pos[n];
  long long base = nh * HS;
  if (p < 0 || p >= maxPos) {
    if (j == 0 && nh % NH == 0) dev_fail(err, K_ROPE, n, p, maxPos);
    return;
  }
  float c = tab[((long long)p * half + j) * 2], s = tab[((long long)p * half + j) * 2 + 1];
  float a = inp[base + j], b = inp[base + j + half];
  if (!bwd) {
    out[base + j] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    out[base + j + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  } else {
    out[base + j] = __fadd_rn(out[base + j], __fadd_rn(__fmul_rn(a, c), __fmul_rn(b, s)));
    out[base + j + half] = __fadd_rn(out[base + j + half], __fsub_rn(__fmul_rn(b, c), __fmul_rn(a, s)));
  }
}

static int rope(dptr out, dptr inp, dptr pos, dptr tab, int maxPos, int N, int NH, int HS, int bwd) {
  if (HS % 2 != 0) return RC_BADARG;
  long long n = (long long)N * NH * (HS / 2);
  if (n <= 0) return 0;
  rope_k<<<blocks_for(n, 256), 256>>>(rj_err(), (float *)out, (const float *)inp, (const int *)pos, (const float *)tab, maxPos, N,
                                      NH, HS, bwd);
  return launch_rc();
}

extern "C" int rj_rope_fwd(dptr out, dptr inp, dptr pos, dptr tab, int maxPos, int N, int NH, int HS) {
  return rope(out, inp, pos, tab, maxPos, N, NH, HS, 0);
}

extern "C" int rj_rope_bwd(dptr dinp, dptr dout, dptr pos, dptr tab, int maxPos, int N, int NH, int HS) {
  return rope(dinp, dout, pos, tab, maxPos, N, NH, HS, 1);
}
