// The batch-invariant FP32 GEMM (mirrors kernels/bigemm.go and gemm.go):
// every output element is its start value (the old value when acc, else
// bias[n] or +0) followed by one fmaf(a[m,k], b[k,n], acc) per k, k = 0..K-1
// in order. No split-K, no atomics, no tensor cores: the order depends on K
// only, so each element has the CPU kernels' bits whatever M, the tile or
// the launch. Tiles are 64×64 outputs, 16 k per shared-memory stage, 256
// threads with 4×4 outputs each (or 128×128, 8 k, 8×8: gemm_bi128_k);
// operands are read through arbitrary strides (transposes and attention's
// per-head views cost no copy).
#include "common.cuh"

#define BM 64
#define BN 64
#define BK 16
#define BM2 128
#define BN2 128
#define BK2 8

// half_off is the offset in a 128-wide tile of a thread's i-th row (or
// column) of 8: four at t·4 in the first half, four at 64 + t·4.
__device__ __forceinline__ int half_off(int t, int i) { return (i < 4 ? 0 : 64) + t * 4 + (i & 3); }

__global__ void __launch_bounds__(256) gemm_bi_k(rj_gemm_args g) {
  __shared__ float As[BK][BM + 4];  // +4: the k-major stores spread over banks
  __shared__ float Bs[BK][BN + 4];
  int z = blockIdx.z;
  int z1 = z / g.Z2, z2 = z % g.Z2;
  const float *A = (const float *)g.a + z1 * g.sa1 + z2 * g.sa2;
  const float *B = (const float *)g.b + z1 * g.sb1 + (long long)(z2 / g.bdiv) * g.sb2;
  float *C = (float *)g.c + z1 * g.sc1 + z2 * g.sc2;
  const float *bias = (const float *)g.bias;
  int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4];
  for (int i = 0; i < 4; i++) {
    int m = m0 + ty * 4 + i;
    for (int j = 0; j < 4; j++) {
      int n = n0 + tx * 4 + j;
      float v = 0.0f;
      if (m < g.M && n < g.N) v = g.acc ? C[m * g.scm + n] : (bias ? bias[n] : 0.0f);
      acc[i][j] = v;
    }
  }
  for (int k0 = 0; k0 < g.K; k0 += BK) {
    for (int e = threadIdx.x; e < BK * BM; e += 256) {
      int kk = e % BK, mm = e / BK;  // consecutive threads walk k: rows of a row-major A
      int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < g.M && k < g.K) ? A[m * g.sam + k * g.sak] : 0.0f;
    }
    for (int e = threadIdx.x; e < BK * BN; e += 256) {
      int nn, kk;
      if (g.sbn == 1) {
        nn = e % BN;
        kk = e / BN;
      } else {
        kk = e % BK;
        nn = e / BK;
      }
      int n = n0 + nn, k = k0 + kk;
      Bs[kk][nn] = (n < g.N && k < g.K) ? B[k * g.sbk + n * g.sbn] : 0.0f;
    }
    __syncthreads();
    int kmax = min(BK, g.K - k0);  // never an FMA past K: fmaf(0, 0, -0) would give +0
    for (int kk = 0; kk < kmax; kk++) {
      float a[4], b[4];
      for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i];
      for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx * 4 + j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = __fmaf_rn(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++) {
    int m = m0 + ty * 4 + i;
    if (m >= g.M) continue;
    for (int j = 0; j < 4; j++) {
      int n = n0 + tx * 4 + j;
      if (n < g.N) C[m * g.scm + n] = acc[i][j];
    }
  }
}

// gemm_bi128_k is gemm_bi_k with 128×128 tiles, 8 k per stage and 8×8
// outputs per thread (rows ty·4 + i and 64 + ty·4 + i, columns likewise):
// four times the FMAs per shared-memory load. Each element's chain is the
// same (start value, then one fmaf per k in order), so its bits are
// gemm_bi_k's; which one runs is a matter of speed only
// (rj_set_gemm_tile).
__global__ void __launch_bounds__(256) gemm_bi128_k(rj_gemm_args g) {
  __shared__ float As[BK2][BM2 + 4];
  __shared__ float Bs[BK2][BN2 + 4];
  int z = blockIdx.z;
  int z1 = z / g.Z2, z2 = z % g.Z2;
  const float *A = (const float *)g.a + z1 * g.sa1 + z2 * g.sa2;
  const float *B = (const float *)g.b + z1 * g.sb1 + (long long)(z2 / g.bdiv) * g.sb2;
  float *C = (float *)g.c + z1 * g.sc1 + z2 * g.sc2;
  const float *bias = (const float *)g.bias;
  int m0 = blockIdx.y * BM2, n0 = blockIdx.x * BN2;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[8][8];
  for (int i = 0; i < 8; i++) {
    int m = m0 + half_off(ty, i);
    for (int j = 0; j < 8; j++) {
      int n = n0 + half_off(tx, j);
      float v = 0.0f;
      if (m < g.M && n < g.N) v = g.acc ? C[m * g.scm + n] : (bias ? bias[n] : 0.0f);
      acc[i][j] = v;
    }
  }
  for (int k0 = 0; k0 < g.K; k0 += BK2) {
    for (int e = threadIdx.x; e < BK2 * BM2; e += 256) {
      int kk = e % BK2, mm = e / BK2;
      int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < g.M && k < g.K) ? A[m * g.sam + k * g.sak] : 0.0f;
    }
    for (int e = threadIdx.x; e < BK2 * BN2; e += 256) {
      int nn, kk;
      if (g.sbn == 1) {
        nn = e % BN2;
        kk = e / BN2;
      } else {
        kk = e % BK2;
        nn = e / BK2;
      }
      int n = n0 + nn, k = k0 + kk;
      Bs[kk][nn] = (n < g.N && k < g.K) ? B[k * g.sbk + n * g.sbn] : 0.0f;
    }
    __syncthreads();
    int kmax = min(BK2, g.K - k0);  // never an FMA past K (gemm_bi_k)
    for (int kk = 0; kk < kmax; kk++) {
      float a[8], b[8];
      for (int i = 0; i < 8; i++) a[i] = As[kk][half_off(ty, i)];
      for (int j = 0; j < 8; j++) b[j] = Bs[kk][half_off(tx, j)];
      for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) acc[i][j] = __fmaf_rn(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 8; i++) {
    int m = m0 + half_off(ty, i);
    if (m >= g.M) continue;
    for (int j = 0; j < 8; j++) {
      int n = n0 + half_off(tx, j);
      if (n < g.N) C[m * g.scm + n] = acc[i][j];
    }
  }
}

static int gemm_tile = 64;  // rj_set_gemm_tile

// rj_set_gemm_tile chooses the batch-invariant GEMM's kernel: 64 (gemm_bi_k,
// the default) or 128 (gemm_bi128_k). Both give the same bits.
extern "C" int rj_set_gemm_tile(int tile) {
  if (tile != 64 && tile != 128) return RC_BADARG;
  gemm_tile = tile;
  return 0;
}

extern "C" int rj_gemm_bi(const rj_gemm_args *g) {
  if (g->M <= 0 || g->N <= 0 || g->Z1 <= 0 || g->Z2 <= 0 || g->bdiv <= 0) return g->M < 0 || g->N < 0 ? RC_BADARG : 0;
  if ((long long)g->Z1 * g->Z2 > 65535) return RC_BADARG;
  int t = gemm_tile;
  dim3 grid((g->N + t - 1) / t, (g->M + t - 1) / t, g->Z1 * g->Z2);
  if (grid.y > 65535) return RC_BADARG;
  if (t == 128)
    gemm_bi128_k<<<grid, 256>>>(*g);
  else
    gemm_bi_k<<<grid, 256>>>(*g);
  return launch_rc();
}

// dbias[o] += Σ_b dout[b,o], b in order (kernels' biasBackward).
__global__ void bias_bwd_k(float *dbias, const float *dout, int B, int OC) {
  int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= OC) return;
  float s = dbias[o];
  for (int b = 0; b < B; b++) s = __fadd_rn(s, dout[(long long)b * OC + o]);
  dbias[o] = s;
}

extern "C" int rj_bias_bwd(dptr dbias, dptr dout, int B, int OC) {
  if (B <= 0 || OC <= 0) return 0;
  bias_bwd_k<<<blocks_for(OC, 128), 128>>>((float *)dbias, (const float *)dout, B, OC);
  return launch_rc();
}
