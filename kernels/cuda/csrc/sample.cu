// Token sampling (mirrors trainer/sample.go's pick, bit for bit): greedy
// argmax, or temperature with optional top-k / top-p. The uniform draw u of
// each row comes from the host (the sequence's PCG stream, one Float64 per
// sampled token), so the GPU chooses the token the CPU would. The CPU's
// float64 sums run in id order (or in the sorted order), so one thread per
// row adds them in that order, reading tiles the block fills in parallel.
// The full-vocabulary order for top-k/top-p is CUB's stable radix sort of
// (weight descending, id ascending on ties): the order sample.go's
// comparator defines.
#include <cub/cub.cuh>

#include "common.cuh"

#define S_THREADS 256
#define S_TILE 2048

// Workspace layout (bytes): w (N·V doubles) | keys_out (N·V doubles) |
// ids_in, ids_out (N·V ints each) | offsets (N+1 ints) | mx, total (N
// floats, N doubles) | CUB temp.
struct SampleWS {
  double *w, *keys;
  int *ids_in, *ids_out, *offs;
  float *mx;
  double *total;
  void *cub;
  size_t cub_bytes;
};

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

static size_t cub_bytes(int N, int V) {
  size_t b = 0;
  cub::DeviceSegmentedRadixSort::SortPairsDescending((void *)0, b, (const double *)0, (double *)0, (const int *)0,
                                                     (int *)0, N * V, N, (const int *)0, (const int *)0);
  return b;
}

static SampleWS carve(char *base, int N, int V) {
  SampleWS s;
  size_t nv = (size_t)N * V, off = 0;
  s.w = (double *)(base + off), off += align256(nv * 8);
  s.keys = (double *)(base + off), off += align256(nv * 8);
  s.ids_in = (int *)(base + off), off += align256(nv * 4);
  s.ids_out = (int *)(base + off), off += align256(nv * 4);
  s.offs = (int *)(base + off), off += align256((N + 1) * 4);
  s.mx = (float *)(base + off), off += align256(N * 4);
  s.total = (double *)(base + off), off += align256(N * 8);
  s.cub = base + off;
  s.cub_bytes = cub_bytes(N, V);
  return s;
}

extern "C" int rj_sample_ws_bytes(int N, int V, unsigned long long *bytes) {
  if (N <= 0 || V <= 0 || (long long)N * V > 0x7fffffff) return RC_BADARG;
  size_t nv = (size_t)N * V;
  *bytes = 2 * align256(nv * 8) + 2 * align256(nv * 4) + align256((N + 1) * 4) + align256(N * 4) + align256(N * 8) +
           cub_bytes(N, V);
  return 0;
}

__device__ float smp_block_max(float v, float *red) {
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

// Weights w[v] = math.Exp(float64(x·inv − mx)) and their total in id order
// (pick's loop, which is also LogProbRow's sum at the same temperature).
// Greedy rows (temp == 0) use inv = 1 (LogProbRow at temperature 1) and
// also find the argmax (first on ties).
__global__ void __launch_bounds__(S_THREADS) sample_weights_k(SampleWS ws, int *tok, const float *logits, int ld, int V,
                                                              float inv, int greedy, int sorted) {
  __shared__ double tile[S_TILE];
  __shared__ float red[32];
  __shared__ int redi[32];
  int n = blockIdx.x;
  const float *row = logits + (long long)n * ld;
  double *w = ws.w + (long long)n * V;
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) mx = gomaxf(mx, __fmul_rn(row[v], inv));
  mx = smp_block_max(mx, red);
  if (greedy) {  // kernels.Argmax: lowest id on ties; a NaN only wins at id 0 (below)
    float bv = -INFINITY;
    int bi = 0x7fffffff;  // no candidate yet (a NaN is none)
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
      float x = row[v];
      if (x == x && (bi == 0x7fffffff || x > bv)) bv = x, bi = v;
    }
    for (int o = 16; o > 0; o >>= 1) {
      float ov = __shfl_xor_sync(0xffffffff, bv, o);
      int oi = __shfl_xor_sync(0xffffffff, bi, o);
      if (oi != 0x7fffffff && (bi == 0x7fffffff || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
    }
    int wi = threadIdx.x / 32, lane = threadIdx.x & 31;
    if (lane == 0) red[wi] = bv, redi[wi] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int j = 1; j < (int)(blockDim.x / 32); j++)
        if (redi[j] != 0x7fffffff && (redi[0] == 0x7fffffff || red[j] > red[0] || (red[j] == red[0] && redi[j] < redi[0])))
          red[0] = red[j], redi[0] = redi[j];
      float r0 = row[0];  // Argmax starts from id 0 and nothing is larger than a NaN
      tok[n] = (r0 != r0 || redi[0] == 0x7fffffff) ? 0 : redi[0];
    }
    __syncthreads();
  }
  double total = 0.0;
  for (int v0 = 0; v0 < V; v0 += S_TILE) {
    int nt = min(S_TILE, V - v0);
    for (int i = threadIdx.x; i < nt; i += blockDim.x) {
      double x = goexp((double)__fsub_rn(__fmul_rn(row[v0 + i], inv), mx));
      tile[i] = x;
      w[v0 + i] = x;
      if (sorted) ws.ids_in[(long long)n * V + v0 + i] = v0 + i;
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int i = 0; i < nt; i++) total = __dadd_rn(total, tile[i]);
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    ws.mx[n] = mx;
    ws.total[n] = total;
    if (sorted) {
      ws.offs[n] = n * V;
      if (n == gridDim.x - 1) ws.offs[n + 1] = (n + 1) * V;
    }
  }
}

// drawIndexOrder: the first id whose cumulative weight exceeds u·total.
__global__ void __launch_bounds__(S_THREADS) sample_draw_k(SampleWS ws, int *tok, const double *u, int V) {
  __shared__ double tile[S_TILE];
  __shared__ int done;
  int n = blockIdx.x;
  const double *w = ws.w + (long long)n * V;
  double target = __dmul_rn(u[n], ws.total[n]);
  double cum = 0.0;
  int last = 0;
  if (threadIdx.x == 0) done = 0;
  __syncthreads();
  for (int v0 = 0; v0 < V; v0 += S_TILE) {
    int nt = min(S_TILE, V - v0);
    for (int i = threadIdx.x; i < nt; i += blockDim.x) tile[i] = w[v0 + i];
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int i = 0; i < nt && !done; i++) {
        double x = tile[i];
        if (x > 0) {
          cum = __dadd_rn(cum, x);
          last = v0 + i;
          if (cum > target) {
            tok[n] = v0 + i;
            done = 1;
          }
        }
      }
    }
    __syncthreads();
    if (done) break;
  }
  if (threadIdx.x == 0 && !done) tok[n] = last;
}

// Top-k / top-p over the sorted order (keys = weights descending, ids):
// the top-k mass, the smallest prefix reaching topP of it, drawOrdered.
__global__ void __launch_bounds__(S_THREADS) sample_draw_sorted_k(SampleWS ws, int *tok, const double *u, int V, int k,
                                                                  double topP) {
  __shared__ double tile[S_TILE];
  __shared__ int tid[S_TILE];
  __shared__ int done;
  int n = blockIdx.x;
  const double *key = ws.keys + (long long)n * V;
  const int *ids = ws.ids_out + (long long)n * V;
  // mass of the top k, in sorted order
  double mass = 0.0;
  for (int v0 = 0; v0 < k; v0 += S_TILE) {
    int nt = min(S_TILE, k - v0);
    for (int i = threadIdx.x; i < nt; i += blockDim.x) tile[i] = key[v0 + i];
    __syncthreads();
    if (threadIdx.x == 0)
      for (int i = 0; i < nt; i++) mass = __dadd_rn(mass, tile[i]);
    __syncthreads();
  }
  __shared__ int k_s;
  __shared__ double mass_s;
  if (topP < 1) {  // smallest prefix whose share of the top-k mass reaches topP
    double cum = 0.0;
    int m = 0;
    if (threadIdx.x == 0) done = 0;
    __syncthreads();
    for (int v0 = 0; v0 < k; v0 += S_TILE) {
      int nt = min(S_TILE, k - v0);
      for (int i = threadIdx.x; i < nt; i += blockDim.x) tile[i] = key[v0 + i];
      __syncthreads();
      if (threadIdx.x == 0) {
        for (int i = 0; i < nt; i++) {
          if (!(m < k && (m == 0 || cum < __dmul_rn(topP, mass)))) {
            done = 1;
            break;
          }
          cum = __dadd_rn(cum, tile[i]);
          m++;
        }
      }
      __syncthreads();
      if (done) break;
    }
    if (threadIdx.x == 0) k_s = m, mass_s = cum;
  } else if (threadIdx.x == 0) {
    k_s = k, mass_s = mass;
  }
  __syncthreads();
  int kk = k_s;
  double target = __dmul_rn(u[n], mass_s);
  double cum = 0.0;
  int last = ids[0];
  if (threadIdx.x == 0) done = 0;
  __syncthreads();
  for (int v0 = 0; v0 < kk; v0 += S_TILE) {
    int nt = min(S_TILE, kk - v0);
    for (int i = threadIdx.x; i < nt; i += blockDim.x) tile[i] = key[v0 + i], tid[i] = ids[v0 + i];
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int i = 0; i < nt && !done; i++) {
        if (tile[i] > 0) {
          cum = __dadd_rn(cum, tile[i]);
          last = tid[i];
          if (cum > target) {
            tok[n] = tid[i];
            done = 1;
          }
        }
      }
    }
    __syncthreads();
    if (done) break;
  }
  if (threadIdx.x == 0 && !done) tok[n] = last;
}

// logprob of the chosen token: LogProbRow = logits[t]/temp − (mx + log(total)).
__global__ void sample_logp_k(DevErr *err, SampleWS ws, float *logp, int *tok, const float *logits, int ld, int N, int V, float temp) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  int t = tok[n];
  if (t < 0 || t >= V) {
    dev_fail(err, K_SAMPLE, n, t, V);
    logp[n] = 0.0f;
    return;
  }
  float l = __fadd_rn(ws.mx[n], (float)golog(ws.total[n]));
  logp[n] = __fsub_rn(__fdiv_rn(logits[(long long)n * ld + t], temp), l);
}

extern "C" int rj_sample(dptr tok, dptr logp, dptr logits, int ld, int N, int V, float temp, float inv, int topK,
                         double topP, dptr u, dptr wsp, unsigned long long wsBytes) {
  unsigned long long need = 0;
  int rc = rj_sample_ws_bytes(N, V, &need);
  if (rc) return rc;
  if (wsBytes < need || ld < V || temp < 0) return RC_BADARG;
  SampleWS ws = carve((char *)wsp, N, V);
  int greedy = temp == 0;
  int k = V;
  if (topK > 0 && topK < k) k = topK;
  int sorted = !greedy && (k < V || topP < 1);
  float winv = greedy ? 1.0f : inv;
  sample_weights_k<<<N, S_THREADS>>>(ws, (int *)tok, (const float *)logits, ld, V, winv, greedy, sorted);
  if ((rc = launch_rc())) return rc;
  if (!greedy && !sorted) {
    sample_draw_k<<<N, S_THREADS>>>(ws, (int *)tok, (const double *)u, V);
    if ((rc = launch_rc())) return rc;
  } else if (sorted) {
    size_t tb = ws.cub_bytes;
    cudaError_t e = cub::DeviceSegmentedRadixSort::SortPairsDescending(ws.cub, tb, ws.w, ws.keys, ws.ids_in, ws.ids_out,
                                                                       N * V, N, ws.offs, ws.offs + 1);
    if (e != cudaSuccess) return (int)e;
    sample_draw_sorted_k<<<N, S_THREADS>>>(ws, (int *)tok, (const double *)u, V, k, topP);
    if ((rc = launch_rc())) return rc;
  }
  sample_logp_k<<<blocks_for(N, 128), 128>>>(rj_err(), ws, (float *)logp, (int *)tok, (const float *)logits, ld, N, V,
                                             greedy ? 1.0f : temp);
  return launch_rc();
}
