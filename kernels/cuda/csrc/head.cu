// The fused loss head (mirrors kernels/head.go): log-probabilities of the
// targets, entropy, and their backward, over (N, V) logits. The CPU sums
// math.Exp in float64 left to right over the vocabulary; a float64 sum in
// another order would round differently, so each row keeps that order: the
// block computes a tile of 2048 exps in parallel (goexp, Go's own math.Exp)
// into shared memory and thread 0 adds them in id order. The row's max
// comes first (an order-free reduction), so the work is chunked over rows,
// not over the vocabulary: the caller bounds N·V, the vocabulary is walked
// in tiles inside the kernel.
#include "common.cuh"

#define HEAD_TILE 2048
#define HEAD_THREADS 256

__device__ float block_max(float v, float *red) {
  for (int o = 16; o > 0; o >>= 1) v = gomaxf(v, __shfl_xor_sync(0xffffffff, v, o));
  int w = threadIdx.x / 32, lane = threadIdx.x & 31;
  if (lane == 0) red[w] = v;
  __syncthreads();
  if (w == 0) {
    v = lane < (int)(blockDim.x / 32) ? red[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = gomaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  v = red[0];
  __syncthreads();
  return v;
}

__global__ void __launch_bounds__(HEAD_THREADS) head_fwd_k(DevErr *err, float *e, float *r, float *lse, float *logp, float *ent,
                                                           const float *logits, const int *targets, int V, int VL,
                                                           float temp, float inv) {
  __shared__ double ex_s[HEAD_TILE];
  __shared__ float z_s[HEAD_TILE];
  __shared__ float red[32];
  long long n = blockIdx.x;
  const float *row = logits + n * V;
  float *er = e + n * V;
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < VL; v += blockDim.x) mx = gomaxf(mx, __fmul_rn(row[v], inv));
  mx = block_max(mx, red);
  for (int v = VL + threadIdx.x; v < V; v += blockDim.x) er[v] = 0.0f;
  double s = 0.0, sz = 0.0;  // meaningful on thread 0
  for (int v0 = 0; v0 < VL; v0 += HEAD_TILE) {
    int nt = min(HEAD_TILE, VL - v0);
    for (int i = threadIdx.x; i < nt; i += blockDim.x) {
      float z = __fmul_rn(row[v0 + i], inv);
      double x = goexp((double)__fsub_rn(z, mx));
      er[v0 + i] = (float)x;
      ex_s[i] = x;
      z_s[i] = z;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      if (ent) {
        for (int i = 0; i < nt; i++) {
          s = __dadd_rn(s, ex_s[i]);
          sz = __dadd_rn(sz, __dmul_rn(ex_s[i], (double)z_s[i]));
        }
      } else {
        for (int i = 0; i < nt; i++) s = __dadd_rn(s, ex_s[i]);
      }
    }
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  float l = __fadd_rn(mx, (float)golog(s));
  lse[n] = l;
  r[n] = (float)__ddiv_rn(1.0, s);
  logp[n] = 0.0f;
  int t = targets[n];
  if (t >= VL) {
    dev_fail(err, K_HEAD, n, t, VL);
  } else if (t >= 0) {
    logp[n] = __fsub_rn(__fdiv_rn(row[t], temp), l);
  }
  if (ent) ent[n] = __fsub_rn(l, (float)__ddiv_rn(sz, s));
}

extern "C" int rj_head_fwd(dptr e, dptr r, dptr lse, dptr logp, dptr ent, dptr logits, dptr targets, int N, int V, int VL,
                           float temp) {
  if (VL <= 0 || VL > V || !(temp > 0)) return RC_BADARG;
  if (N <= 0) return 0;
  float inv = 1.0f / temp;  // host float32 division, as Go's 1/temp
  head_fwd_k<<<N, HEAD_THREADS>>>(rj_err(), (float *)e, (float *)r, (float *)lse, (float *)logp, (float *)ent,
                                  (const float *)logits, (const int *)targets, V, VL, temp, inv);
  return launch_rc();
}

// Element-wise: thread (n, v) turns e into dlogits (headBwdLogp).
__global__ void head_bwd_logp_k(float *e, const float *r, const float *dlogp, const float *dent, const float *logits,
                                const float *lse, const float *ent, const int *targets, int N, int V, int VL, float inv) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)N * V) return;
  long long n = i / V;
  int v = (int)(i % V);
  int t = targets[n];
  float g = 0.0f, gh = 0.0f;
  if (t >= 0) g = __fmul_rn(dlogp[n], inv);
  if (dent) gh = __fmul_rn(dent[n], inv);
  if (g == 0.0f && gh == 0.0f) {
    e[i] = 0.0f;
    return;
  }
  float rn = r[n];
  float d = e[i];
  if (gh == 0.0f) {
    d = __fmul_rn(-g, __fmul_rn(d, rn));
  } else if (v < VL) {
    float p = __fmul_rn(d, rn);
    float x = logits[i];
    float lp = __fadd_rn(__fsub_rn(__fmul_rn(x, inv), lse[n]), ent[n]);
    d = __fsub_rn(__fmul_rn(-g, p), __fmul_rn(__fmul_rn(gh, p), lp));
  }
  if (v == t) d = __fadd_rn(d, g);
  e[i] = d;
}

extern "C" int rj_head_bwd_logp(dptr e, dptr r, dptr dlogp, dptr dent, dptr logits, dptr lse, dptr ent, dptr targets, int N,
                                int V, int VL, float temp) {
  if (VL <= 0 || VL > V || !(temp > 0)) return RC_BADARG;
  if (N <= 0) return 0;
  float inv = 1.0f / temp;
  head_bwd_logp_k<<<blocks_for((long long)N * V, 256), 256>>>((float *)e, (const float *)r, (const float *)dlogp,
                                                              (const float *)dent, (const float *)logits,
                                                              (const float *)lse, (const float *)ent,
                                                              (const int *)targets, N, V, VL, inv);
  return launch_rc();
}

__global__ void head_bwd_ce_k(float *e, const float *r, float dloss, const int *targets, int count, int N, int V) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)N * V) return;
  long long n = i / V;
  int v = (int)(i % V);
  int t = targets[n];
  if (t < 0 || count == 0) {
    e[i] = 0.0f;
    return;
  }
  float g = __fdiv_rn(dloss, (float)count);
  float d = __fmul_rn(g, __fmul_rn(e[i], r[n]));
  if (v == t) d = __fsub_rn(d, g);
  e[i] = d;
}

extern "C" int rj_head_bwd_ce(dptr e, dptr r, float dloss, dptr targets, int count, int N, int V) {
  if (N <= 0 || V <= 0) return 0;
  head_bwd_ce_k<<<blocks_for((long long)N * V, 256), 256>>>((float *)e, (const float *)r, dloss, (const int *)targets,
                                                            count, N, V);
  return launch_rc();
}
