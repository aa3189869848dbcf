// RMSNorm forward and backward (mirrors kernels/ops.go): one warp per row.
#include "common.cuh"

// dot8 is kernels' dot(x, x) as lane j of a warp sees it: lanes 0..7 hold
// the 8 accumulators (s_j sums i ≡ j mod 8 below the last multiple of 8,
// s_0 then takes the tail in order), combined as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)).
__device__ float dot8_warp(const float *a, const float *b, int n) {
  int lane = threadIdx.x & 31;
  float s = 0.0f;
  int n8 = n & ~7;
  if (lane < 8) {
    for (int i = lane; i < n8; i += 8) s = __fadd_rn(s, __fmul_rn(a[i], b[i]));
    if (lane == 0)
      for (int i = n8; i < n; i++) s = __fadd_rn(s, __fmul_rn(a[i], b[i]));
  }
  float s1 = __shfl_down_sync(0xffffffff, s, 1);
  float p = __fadd_rn(s, s1);  // lanes 0,2,4,6: s0+s1, s2+s3, s4+s5, s6+s7
  float p2 = __shfl_down_sync(0xffffffff, p, 2);
  float q = __fadd_rn(p, p2);  // lanes 0, 4: (s0+s1)+(s2+s3), (s4+s5)+(s6+s7)
  float q4 = __shfl_down_sync(0xffffffff, q, 4);
  float r = __fadd_rn(q, q4);
  return __shfl_sync(0xffffffff, r, 0);
}

__global__ void rmsnorm_fwd_k(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
  int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;
  const float *x = inp + (long long)n * C;
  float ss = dot8_warp(x, x, C);
  float r = __fdiv_rn(1.0f, (float)__dsqrt_rn((double)__fadd_rn(__fdiv_rn(ss, (float)C), eps)));
  int lane = threadIdx.x & 31;
  if (lane == 0) rstd[n] = r;
  float *o = out + (long long)n * C;
  for (int c = lane; c < C; c += 32) o[c] = __fmul_rn(__fmul_rn(x[c], r), w[c]);
}

// dinp: lane 0 sums Σ d·w·x in order (the CPU's plain loop), then every lane
// updates its channels.
__global__ void rmsnorm_bwd_dinp_k(float *dinp, const float *dout, const float *inp, const float *w, const float *rstd,
                                   int N, int C) {
  int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;
  int lane = threadIdx.x & 31;
  const float *x = inp + (long long)n * C;
  const float *d = dout + (long long)n * C;
  float *di = dinp + (long long)n * C;
  float r = rstd[n];
  float s = 0.0f;
  if (lane == 0)
    for (int c = 0; c < C; c++) s = __fadd_rn(s, __fmul_rn(__fmul_rn(d[c], w[c]), x[c]));
  s = __shfl_sync(0xffffffff, s, 0);
  s = __fmul_rn(s, __fdiv_rn(r, (float)C));
  for (int c = lane; c < C; c += 32) {
    float v = __fmul_rn(r, __fsub_rn(__fmul_rn(d[c], w[c]), __fmul_rn(__fmul_rn(x[c], r), s)));
    di[c] = __fadd_rn(di[c], v);
  }
}

// dweight: one thread per channel, rows in order.
__global__ void rmsnorm_bwd_dw_k(float *dw, const float *dout, const float *inp, const float *rstd, int N, int C) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = dw[c];
  for (int n = 0; n < N; n++) {
    long long i = (long long)n * C + c;
    acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(dout[i], inp[i]), rstd[n]));
  }
  dw[c] = acc;
}

extern "C" int rj_rmsnorm_fwd(dptr out, dptr rstd, dptr inp, dptr weight, int N, int C, float eps) {
  if (N <= 0 || C <= 0) return 0;
  rmsnorm_fwd_k<<<blocks_for(N, 8), 256>>>((float *)out, (float *)rstd, (const float *)inp, (const float *)weight, N, C, eps);
  return launch_rc();
}

extern "C" int rj_rmsnorm_bwd(dptr dinp, dptr dweight, dptr dout, dptr inp, dptr weight, dptr rstd, int N, int C) {
  if (N <= 0 || C <= 0) return 0;
  rmsnorm_bwd_dinp_k<<<blocks_for(N, 8), 256>>>((float *)dinp, (const float *)dout, (const float *)inp,
                                                (const float *)weight, (const float *)rstd, N, C);
  int rc = launch_rc();
  if (rc || !dweight) return rc;
  rmsnorm_bwd_dw_k<<<blocks_for(C, 128), 128>>>((float *)dweight, (const float *)dout, (const float *)inp,
                                               (const float *)rstd, N, C);
  return launch_rc();
}
