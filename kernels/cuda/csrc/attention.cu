// Causal GQA attention (mirrors kernels/attention_bi.go for the forward and
// kernels/attention_gemm.go for the backward): the products go through the
// batch-invariant GEMM (gemm_bi.cu), the softmax and its masks are the CPU's
// float32 operations in the CPU's order, so both directions have the CPU's
// bits. The (T, T) scores of every (sequence, head) are materialised in the
// caller's scratch (S, P, dP), flash-attention's math without its fusion.
#include "common.cuh"

extern "C" int rj_gemm_bi(const rj_gemm_args *g);

static float attn_scale(int HS) { return (float)(1.0 / sqrt((double)HS)); }

// Forward probabilities, one warp per (b, h, t) row of S (B, NH, T, T):
// attnProbsBI. The max is order-free; the float32 sum of the exps runs in
// u order on lane 0, as on the CPU.
__global__ void attn_probs_k(float *S, float *lse, const unsigned char *valid, int B, int T, int NH, float scale) {
  long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= (long long)B * NH * T) return;
  int lane = threadIdx.x & 31;
  int t = (int)(row % T);
  int b = (int)(row / ((long long)NH * T));
  float *s = S + row * T;
  if (valid && !valid[(long long)b * T + t]) {
    for (int u = lane; u < T; u += 32) s[u] = 0.0f;
    if (lane == 0) lse[row] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int u = lane; u < T; u += 32) {
    bool ok = u <= t && (!valid || valid[(long long)b * T + u]);
    if (ok) {
      float x = __fmul_rn(s[u], scale);
      s[u] = x;
      mx = gomaxf(mx, x);
    }
  }
  for (int o = 16; o > 0; o >>= 1) mx = gomaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
  for (int u = lane; u < T; u += 32) {
    bool ok = u <= t && (!valid || valid[(long long)b * T + u]);
    s[u] = ok ? goexpf(__fsub_rn(s[u], mx)) : 0.0f;
  }
  __syncwarp();
  float sum = 0.0f;
  if (lane == 0)
    for (int u = 0; u <= t; u++) {
      bool ok = !valid || valid[(long long)b * T + u];
      if (ok) sum = __fadd_rn(sum, s[u]);
    }
  sum = __shfl_sync(0xffffffff, sum, 0);
  __syncwarp();
  float inv = __fdiv_rn(1.0f, sum);
  for (int u = lane; u < T; u += 32) s[u] = __fmul_rn(s[u], inv);
  if (lane == 0) lse[row] = __fadd_rn(mx, (float)golog((double)sum));
}

extern "C" int rj_attn_fwd(dptr out, dptr lse, dptr q, dptr k, dptr v, dptr valid, dptr S, int B, int T, int NH, int NKV,
                           int HS) {
  if (NKV <= 0 || NH % NKV != 0 || HS <= 0) return RC_BADARG;
  if (B <= 0 || T <= 0) return 0;
  int g = NH / NKV;
  float scale = attn_scale(HS);
  // S[b,h] (T, T) = Q[b,:,h] · K[b,:,h/g]ᵀ over HS
  rj_gemm_args a = {};
  a.M = T, a.N = T, a.K = HS, a.Z1 = B, a.Z2 = NH, a.bdiv = g, a.acc = 0;
  a.a = q, a.sam = (long long)NH * HS, a.sak = 1, a.sa1 = (long long)T * NH * HS, a.sa2 = HS;
  a.b = k, a.sbk = 1, a.sbn = (long long)NKV * HS, a.sb1 = (long long)T * NKV * HS, a.sb2 = HS;
  a.c = S, a.scm = T, a.sc1 = (long long)NH * T * T, a.sc2 = (long long)T * T;
  int rc = rj_gemm_bi(&a);
  if (rc) return rc;
  long long rows = (long long)B * NH * T;
  attn_probs_k<<<blocks_for(rows, 8), 256>>>((float *)S, (float *)lse, (const unsigned char *)valid, B, T, NH, scale);
  rc = launch_rc();
  if (rc) return rc;
  // O[b,:,h] (T, HS) = P[b,h] (T, T) · V[b,:,h/g] (T, HS), over all T keys
  rj_gemm_args o = {};
  o.M = T, o.N = HS, o.K = T, o.Z1 = B, o.Z2 = NH, o.bdiv = g, o.acc = 0;
  o.a = S, o.sam = T, o.sak = 1, o.sa1 = (long long)NH * T * T, o.sa2 = (long long)T * T;
  o.b = v, o.sbk = (long long)NKV * HS, o.sbn = 1, o.sb1 = (long long)T * NKV * HS, o.sb2 = HS;
  o.c = out, o.scm = (long long)NH * HS, o.sc1 = (long long)T * NH * HS, o.sc2 = HS;
  return rj_gemm_bi(&o);
}

// P = expf(S·scale − lse) on s ≤ t of valid keys, 0 elsewhere; one thread
// per element of the (B·NKV, T, T) scratch for query head h = kh·g + j.
__global__ void attn_bwd_p_k(float *P, const float *lse, const unsigned char *valid, int B, int T, int NH, int NKV, int j,
                             float scale) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long TT = (long long)T * T;
  if (i >= (long long)B * NKV * TT) return;
  int s = (int)(i % T), t = (int)((i / T) % T);
  long long bk = i / TT;
  int b = (int)(bk / NKV), kh = (int)(bk % NKV);
  int h = kh * (NH / NKV) + j;
  if ((valid && !valid[(long long)b * T + t]) || s > t || (valid && !valid[(long long)b * T + s])) {
    P[i] = 0.0f;
    return;
  }
  float l = lse[((long long)b * NH + h) * T + t];
  P[i] = goexpf(__fsub_rn(__fmul_rn(P[i], scale), l));
}

// D[b,t,h] = dot(dout, out) with kernels' 8 accumulators; one thread each.
__global__ void attn_bwd_d_k(float *D, const float *dout, const float *out, long long rows, int HS) {
  long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float *a = dout + r * HS, *b = out + r * HS;
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= HS; i += 8)
    for (int j = 0; j < 8; j++) s[j] = __fadd_rn(s[j], __fmul_rn(a[i + j], b[i + j]));
  for (; i < HS; i++) s[0] = __fadd_rn(s[0], __fmul_rn(a[i], b[i]));
  D[r] = __fadd_rn(__fadd_rn(__fadd_rn(s[0], s[1]), __fadd_rn(s[2], s[3])),
                   __fadd_rn(__fadd_rn(s[4], s[5]), __fadd_rn(s[6], s[7])));
}

// dS = P·((dP − D)·scale) on s ≤ t, in place in P.
__global__ void attn_bwd_ds_k(float *P, const float *dP, const float *D, int B, int T, int NH, int NKV, int j, float scale) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long TT = (long long)T * T;
  if (i >= (long long)B * NKV * TT) return;
  int s = (int)(i % T), t = (int)((i / T) % T);
  if (s > t) return;
  long long bk = i / TT;
  int b = (int)(bk / NKV), kh = (int)(bk % NKV);
  int h = kh * (NH / NKV) + j;
  float d = D[((long long)b * T + t) * NH + h];
  P[i] = __fmul_rn(P[i], __fmul_rn(__fsub_rn(dP[i], d), scale));
}

// rj_attn_bwd walks the query heads of each group in order j = 0..g-1 (the
// CPU's order, which dk and dv accumulate in), all (b, kv head) at once.
// P and dP hold B·NKV·T·T floats, D B·T·NH.
extern "C" int rj_attn_bwd(dptr dq, dptr dk, dptr dv, dptr dout, dptr q, dptr k, dptr v, dptr out, dptr lse, dptr valid,
                           dptr P, dptr dP, dptr D, int B, int T, int NH, int NKV, int HS) {
  if (NKV <= 0 || NH % NKV != 0 || HS <= 0) return RC_BADARG;
  if (B <= 0 || T <= 0) return 0;
  int g = NH / NKV;
  float scale = attn_scale(HS);
  long long rows = (long long)B * T * NH;
  attn_bwd_d_k<<<blocks_for(rows, 128), 128>>>((float *)D, (const float *)dout, (const float *)out, rows, HS);
  int rc = launch_rc();
  if (rc) return rc;
  long long qs1 = (long long)T * NH * HS, ks1 = (long long)T * NKV * HS, TT = (long long)T * T;
  long long nP = (long long)B * NKV * TT;
  for (int j = 0; j < g; j++) {
    long long qoff = (long long)j * HS * 4;  // bytes: head kh·g + j within the row
    // P = Q_h · K_khᵀ
    rj_gemm_args a = {};
    a.M = T, a.N = T, a.K = HS, a.Z1 = B, a.Z2 = NKV, a.bdiv = 1;
    a.a = q + qoff, a.sam = (long long)NH * HS, a.sak = 1, a.sa1 = qs1, a.sa2 = (long long)g * HS;
    a.b = k, a.sbk = 1, a.sbn = (long long)NKV * HS, a.sb1 = ks1, a.sb2 = HS;
    a.c = P, a.scm = T, a.sc1 = (long long)NKV * TT, a.sc2 = TT;
    if ((rc = rj_gemm_bi(&a))) return rc;
    attn_bwd_p_k<<<blocks_for(nP, 256), 256>>>((float *)P, (const float *)lse, (const unsigned char *)valid, B, T, NH,
                                               NKV, j, scale);
    if ((rc = launch_rc())) return rc;
    // dV_kh += Pᵀ · dO_h
    rj_gemm_args b = {};
    b.M = T, b.N = HS, b.K = T, b.Z1 = B, b.Z2 = NKV, b.bdiv = 1, b.acc = 1;
    b.a = P, b.sam = 1, b.sak = T, b.sa1 = (long long)NKV * TT, b.sa2 = TT;
    b.b = dout + qoff, b.sbk = (long long)NH * HS, b.sbn = 1, b.sb1 = qs1, b.sb2 = (long long)g * HS;
    b.c = dv, b.scm = (long long)NKV * HS, b.sc1 = ks1, b.sc2 = HS;
    if ((rc = rj_gemm_bi(&b))) return rc;
    // dP = dO_h · V_khᵀ
    rj_gemm_args c = a;
    c.a = dout + qoff, c.b = v, c.c = dP;
    if ((rc = rj_gemm_bi(&c))) return rc;
    attn_bwd_ds_k<<<blocks_for(nP, 256), 256>>>((float *)P, (const float *)dP, (const float *)D, B, T, NH, NKV, j, scale);
    if ((rc = launch_rc())) return rc;
    // dQ_h += dS · K_kh
    rj_gemm_args d = {};
    d.M = T, d.N = HS, d.K = T, d.Z1 = B, d.Z2 = NKV, d.bdiv = 1, d.acc = 1;
    d.a = P, d.sam = T, d.sak = 1, d.sa1 = (long long)NKV * TT, d.sa2 = TT;
    d.b = k, d.sbk = (long long)NKV * HS, d.sbn = 1, d.sb1 = ks1, d.sb2 = HS;
    d.c = dq + qoff, d.scm = (long long)NH * HS, d.sc1 = qs1, d.sc2 = (long long)g * HS;
    if ((rc = rj_gemm_bi(&d))) return rc;
    // dK_kh += dSᵀ · Q_h
    rj_gemm_args e = b;
    e.b = q + qoff, e.c = dk;
    if ((rc = rj_gemm_bi(&e))) return rc;
  }
  return 0;
}

// Decode: one new query per sequence over its KV cache (mirrors
// kernels.AttentionDecodeBI, the sampler's). attn_decode_row is one (b, h):
// its query qh (HS) attends the n keys at kb + u·ld (u = 0..n−1, HS floats
// each: kv head kh's slice of position u) with the values at vb + u·ld,
// writing o (HS); s is its n floats of scratch, red and sum_s the block's
// shared memory. s_u = one fmaf chain over d, the forward's softmax
// (attnProbsBI with every key taking part), o[d] = one fmaf chain over u
// ascending — the forward's operations for that row over the keys it did
// not mask, so the bits equal AttentionForward's row at position n−1.
// Both decode kernels below call it: where the keys live (one contiguous
// (B, Tmax, NKV, HS) copy, or each row's own device-resident cache) only
// changes kb, vb and ld, never an operation or its order.
__device__ __forceinline__ void attn_decode_row(float *o, const float *qh, const float *kb, const float *vb, long long ld,
                                                int n, float *s, int HS, float scale, float *red, float *sum_s) {
  float mx = -INFINITY;
  for (int u = threadIdx.x; u < n; u += blockDim.x) {
    const float *ku = kb + (long long)u * ld;
    float acc = 0.0f;
    for (int d = 0; d < HS; d++) acc = __fmaf_rn(qh[d], ku[d], acc);
    float x = __fmul_rn(acc, scale);
    s[u] = x;
    mx = gomaxf(mx, x);
  }
  for (int w = 16; w > 0; w >>= 1) mx = gomaxf(mx, __shfl_xor_sync(0xffffffff, mx, w));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x / 32] = mx;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = red[0];
    for (int w = 1; w < (int)(blockDim.x / 32); w++) m = gomaxf(m, red[w]);
    red[0] = m;
  }
  __syncthreads();
  mx = red[0];
  for (int u = threadIdx.x; u < n; u += blockDim.x) s[u] = goexpf(__fsub_rn(s[u], mx));
  __syncthreads();
  if (threadIdx.x == 0) {
    float sum = 0.0f;
    for (int u = 0; u < n; u++) sum = __fadd_rn(sum, s[u]);
    *sum_s = sum;
  }
  __syncthreads();
  float inv = __fdiv_rn(1.0f, *sum_s);
  for (int u = threadIdx.x; u < n; u += blockDim.x) s[u] = __fmul_rn(s[u], inv);
  __syncthreads();
  for (int d = threadIdx.x; d < HS; d += blockDim.x) {
    float acc = 0.0f;
    for (int u = 0; u < n; u++) acc = __fmaf_rn(s[u], vb[(long long)u * ld + d], acc);
    o[d] = acc;
  }
}

// The contiguous decode: sequence b has lens[b] keys (the new one
// included) in kc, vc (B, Tmax, NKV, HS); its query q (B, NH, HS) attends
// all of them. S is scratch (B, NH, Tmax). One block of 128 threads per
// (b, h).
__global__ void attn_decode_k(DevErr *err, float *out, const float *q, const float *kc, const float *vc, const int *lens,
                              float *S, int Tmax, int NH, int NKV, int HS, float scale) {
  int b = blockIdx.x / NH, h = blockIdx.x % NH;
  int kh = h / (NH / NKV);
  int n = lens[b];
  if (n < 1 || n > Tmax) {  // out is not written: reported (Device.Sync)
    if (h == 0 && threadIdx.x == 0) dev_fail(err, K_ATTN_DECODE, b, n, (long long)Tmax + 1);
    return;
  }
  __shared__ float red[32];
  __shared__ float sum_s;
  long long base = ((long long)b * Tmax * NKV + kh) * HS;
  attn_decode_row(out + ((long long)b * NH + h) * HS, q + ((long long)b * NH + h) * HS, kc + base, vc + base,
                  (long long)NKV * HS, n, S + ((long long)b * NH + h) * Tmax, HS, scale, red, &sum_s);
}

extern "C" int rj_attn_decode(dptr out, dptr q, dptr kc, dptr vc, dptr lens, dptr S, int B, int Tmax, int NH, int NKV,
                              int HS) {
  if (NKV <= 0 || NH % NKV != 0 || HS <= 0 || Tmax <= 0) return RC_BADARG;
  if (B <= 0) return 0;
  attn_decode_k<<<B * NH, 128>>>(rj_err(), (float *)out, (const float *)q, (const float *)kc, (const float *)vc, (const int *)lens,
                                 (float *)S, Tmax, NH, NKV, HS, attn_scale(HS));
  return launch_rc();
}

// The decode over caches that stay where they are (the trainer's
// device-resident KV caches): tab (3·B) holds row b's key base address
// tab[b], its value base address tab[B + b] and its length tab[2B + b];
// position u, kv head kh of row b is at base + (u·ld + kh·HS) floats.
// Rows may share a cache (a prefill's rows, each with its own length).
// S is scratch (B, NH, Tmax) for Tmax ≥ every length.
__global__ void attn_decode_rows_k(float *out, const float *q, const unsigned long long *tab, float *S, int B, int Tmax,
                                   long long ld, int NH, int NKV, int HS, float scale) {
  int b = blockIdx.x / NH, h = blockIdx.x % NH;
  int kh = h / (NH / NKV);
  long long n = (long long)tab[2LL * B + b];
  if (n < 1 || n > Tmax) return;
  __shared__ float red[32];
  __shared__ float sum_s;
  const float *kb = (const float *)tab[b] + (long long)kh * HS;
  const float *vb = (const float *)tab[(long long)B + b] + (long long)kh * HS;
  attn_decode_row(out + ((long long)b * NH + h) * HS, q + ((long long)b * NH + h) * HS, kb, vb, ld, (int)n,
                  S + ((long long)b * NH + h) * Tmax, HS, scale, red, &sum_s);
}

extern "C" int rj_attn_decode_rows(dptr out, dptr q, dptr tab, dptr S, int B, int Tmax, long long ld, int NH, int NKV,
                                   int HS) {
  if (NKV <= 0 || NH % NKV != 0 || HS <= 0 || Tmax <= 0 || ld < (long long)NKV * HS) return RC_BADARG;
  if (B <= 0) return 0;
  attn_decode_rows_k<<<B * NH, 128>>>((float *)out, (const float *)q, (const unsigned long long *)tab, (float *)S, B,
                                      Tmax, ld, NH, NKV, HS, attn_scale(HS));
  return launch_rc();
}
