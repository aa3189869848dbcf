// The batch-invariant bf16 GEMM (mirrors kernels.MatmulForwardBF16):
// out (M, N) = bf16(inp) (M, K) · bf16(w)ᵀ + bias, with the CPU's order,
// which is x86's VDPBF16PS: per pair p of k (2p, 2p+1; a missing k = K is
// 0), acc = ftz(fmaf(x[2p+1], w[2p+1], daz(acc))), then the same with 2p.
// The product of two bf16 values is exact in float32, so each step has one
// rounding, as the instruction. w is a BF16 Buf (N, K) rounded by ToBF16
// (kernels.BF16); inp is float32, rounded here the same way, read through
// strides (element (m, k) at inp[m·ldm + k·ldk]) so the backward's
// doutᵀ needs no copy. With acc, each out[m, n] starts from its own value
// instead of the bias (kernels' matmulBF16 with acc: MatmulBackwardBF16).
#include "common.cuh"

#define PM 64
#define PN 64
#define PK 16  // pairs per shared-memory stage

__device__ __forceinline__ float flush_sub(float x) {
  unsigned u = __float_as_uint(x);
  return (u & 0x7f800000u) == 0 ? __uint_as_float(u & 0x80000000u) : x;
}

// bf16r is kernels.BF16 as a float32 value.
__device__ __forceinline__ float bf16r(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0) return __uint_as_float(u & 0x80000000u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __uint_as_float((u | 0x400000u) & 0xffff0000u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return __uint_as_float(u & 0xffff0000u);
}

__device__ __forceinline__ float bf16_step(float acc, float a, float b) {
  return flush_sub(__fmaf_rn(a, b, flush_sub(acc)));
}

__global__ void __launch_bounds__(256) gemm_bf16_k(float *out, const float *inp, const unsigned short *w,
                                                   const float *bias, int M, int N, int K, long long ldm,
                                                   long long ldk, int accum) {
  __shared__ float Ae[PK][PM + 4], Ao[PK][PM + 4];
  __shared__ float Be[PK][PN + 4], Bo[PK][PN + 4];
  int K2 = (K + 1) / 2;
  int m0 = blockIdx.y * PM, n0 = blockIdx.x * PN;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      int n = n0 + tx * 4 + j;
      int m = m0 + ty * 4 + i;
      if (accum)
        acc[i][j] = (m < M && n < N) ? out[(long long)m * N + n] : 0.0f;
      else
        acc[i][j] = (bias && n < N) ? bias[n] : 0.0f;
    }
  for (int p0 = 0; p0 < K2; p0 += PK) {
    for (int e = threadIdx.x; e < PK * PM; e += 256) {
      int pp = e % PK, mm = e / PK;
      int m = m0 + mm, k = 2 * (p0 + pp);
      float xe = 0.0f, xo = 0.0f;
      if (m < M && k < K) {
        xe = bf16r(inp[m * ldm + k * ldk]);
        if (k + 1 < K) xo = bf16r(inp[m * ldm + (k + 1) * ldk]);
      }
      Ae[pp][mm] = xe;
      Ao[pp][mm] = xo;
    }
    for (int e = threadIdx.x; e < PK * PN; e += 256) {
      int pp = e % PK, nn = e / PK;
      int n = n0 + nn, k = 2 * (p0 + pp);
      float we = 0.0f, wo = 0.0f;
      if (n < N && k < K) {
        we = __uint_as_float((unsigned)w[(long long)n * K + k] << 16);
        if (k + 1 < K) wo = __uint_as_float((unsigned)w[(long long)n * K + k + 1] << 16);
      }
      Be[pp][nn] = we;
      Bo[pp][nn] = wo;
    }
    __syncthreads();
    int pmax = min(PK, K2 - p0);
    for (int pp = 0; pp < pmax; pp++) {
      float ae[4], ao[4], be[4], bo[4];
      for (int i = 0; i < 4; i++) ae[i] = Ae[pp][ty * 4 + i], ao[i] = Ao[pp][ty * 4 + i];
      for (int j = 0; j < 4; j++) be[j] = Be[pp][tx * 4 + j], bo[j] = Bo[pp][tx * 4 + j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = bf16_step(bf16_step(acc[i][j], ao[i], bo[j]), ae[i], be[j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++) {
    int m = m0 + ty * 4 + i;
    if (m >= M) continue;
    for (int j = 0; j < 4; j++) {
      int n = n0 + tx * 4 + j;
      if (n < N) out[(long long)m * N + n] = acc[i][j];
    }
  }
}

extern "C" int rj_gemm_bf16_bi_ex(dptr out, dptr inp, dptr w, dptr bias, int M, int N, int K, long long ldm,
                                  long long ldk, int acc) {
  if (M <= 0 || N <= 0 || K <= 0) return M < 0 || N < 0 || K < 0 ? RC_BADARG : 0;
  dim3 grid((N + PN - 1) / PN, (M + PM - 1) / PM);
  if (grid.y > 65535) return RC_BADARG;
  gemm_bf16_k<<<grid, 256>>>((float *)out, (const float *)inp, (const unsigned short *)w, (const float *)bias, M, N, K,
                             ldm, ldk, acc);
  return launch_rc();
}

extern "C" int rj_gemm_bf16_bi(dptr out, dptr inp, dptr w, dptr bias, int M, int N, int K) {
  return rj_gemm_bf16_bi_ex(out, inp, w, bias, M, N, K, K, 1, 0);
}
