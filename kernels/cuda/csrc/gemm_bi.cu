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

// gemm_bi_tile is one block's T×T tile of C, BKT k per shared-memory
// stage, 256 threads with R×R outputs each (R = T/16): a thread's i-th row
// (and column) of R is tile_off(t, i), four at t·4 in each 64-wide half.
// As and Bs are the kernel's shared memory, BKT rows of T + 4 (+4: the
// k-major stores spread over banks).
__device__ __forceinline__ int tile_off(int t, int i) { return (i >> 2) * 64 + t * 4 + (i & 3); }

template <int T, int BKT>
__device__ __forceinline__ void gemm_bi_tile(const rj_gemm_args &g, float (*As)[T + 4], float (*Bs)[T + 4]) {
  const int R = T / 16;
  int z = blockIdx.z;
  int z1 = z / g.Z2, z2 = z % g.Z2;
  const float *A = (const float *)g.a + z1 * g.sa1 + z2 * g.sa2;
  const float *B = (const float *)g.b + z1 * g.sb1 + (long long)(z2 / g.bdiv) * g.sb2;
  float *C = (float *)g.c + z1 * g.sc1 + z2 * g.sc2;
  const float *bias = (const float *)g.bias;
  int m0 = blockIdx.y * T, n0 = blockIdx.x * T;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[R][R];
  for (int i = 0; i < R; i++) {
    int m = m0 + tile_off(ty, i);
    for (int j = 0; j < R; j++) {
      int n = n0 + tile_off(tx, j);
      float v = 0.0f;
      if (m < g.M && n < g.N) v = g.acc ? C[m * g.scm + n] : (bias ? bias[n] : 0.0f);
      acc[i][j] = v;
    }
  }
  for (int k0 = 0; k0 < g.K; k0 += BKT) {
    for (int e = threadIdx.x; e < BKT * T; e += 256) {
      int kk = e % BKT, mm = e / BKT;  // consecutive threads walk k: rows of a row-major A
      int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < g.M && k < g.K) ? A[m * g.sam + k * g.sak] : 0.0f;
    }
    for (int e = threadIdx.x; e < BKT * T; e += 256) {
      int nn, kk;
      if (g.sbn == 1) {
        nn = e % T;
        kk = e / T;
      } else {
        kk = e % BKT;
        nn = e / BKT;
      }
      int n = n0 + nn, k = k0 + kk;
      Bs[kk][nn] = (n < g.N && k < g.K) ? B[k * g.sbk + n * g.sbn] : 0.0f;
    }
    __syncthreads();
    int kmax = min(BKT, g.K - k0);  // never an FMA past K: fmaf(0, 0, -0) would give +0
    for (int kk = 0; kk < kmax; kk++) {
      float a[R], b[R];
      for (int i = 0; i < R; i++) a[i] = As[kk][tile_off(ty, i)];
      for (int j = 0; j < R; j++) b[j] = Bs[kk][tile_off(tx, j)];
      for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) acc[i][j] = __fmaf_rn(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < R; i++) {
    int m = m0 + tile_off(ty, i);
    if (m >= g.M) continue;
    for (int j = 0; j < R; j++) {
      int n = n0 + tile_off(tx, j);
      if (n < g.N) C[m * g.scm + n] = acc[i][j];
    }
  }
}

// gemm_bi_k: 64×64 tiles, 16 k per stage, 4×4 outputs a thread.
__global__ void __launch_bounds__(256) gemm_bi_k(rj_gemm_args g) {
  __shared__ float As[16][64 + 4];
  __shared__ float Bs[16][64 + 4];
  gemm_bi_tile<64, 16>(g, As, Bs);
}

// gemm_bi128_k: 128×128 tiles, 8 k per stage, 8×8 outputs a thread, four
// times the FMAs per shared-memory load. Each element's chain is the same
// (start value, then one fmaf per k in order), so its bits are
// gemm_bi_k's; which one runs is a matter of speed only
// (rj_set_gemm_tile).
__global__ void __launch_bounds__(256) gemm_bi128_k(rj_gemm_args g) {
  __shared__ float As[8][128 + 4];
  __shared__ float Bs[8][128 + 4];
  gemm_bi_tile<128, 8>(g, As, Bs);
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
