// AdamW (kernels.AdamWStep) and the gradient norm (kernels.GradNorm).
#include "common.cuh"

// The host computes stepSize, invBc2 and decay exactly as kernels/optim.go.
__global__ void adamw_k(float *p, float *m, float *v, float *g, long long n, float sc, float b1, float b2, float eps,
                        float stepSize, float invBc2, float decay, int zero) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float gi = g[i];
  if (sc != 1.0f) gi = __fmul_rn(gi, sc);
  float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(__fsub_rn(1.0f, b1), gi));
  float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), gi), gi));
  m[i] = mi;
  v[i] = vi;
  float denom = __fadd_rn(__fmul_rn((float)__dsqrt_rn((double)vi), invBc2), eps);
  p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fdiv_rn(__fmul_rn(stepSize, mi), denom));
  if (zero) g[i] = 0.0f;
}

extern "C" int rj_adamw_step(dptr p, dptr m, dptr v, dptr g, long long n, float sc, float b1, float b2, float eps,
                             float stepSize, float invBc2, float decay, int zero) {
  if (n <= 0) return 0;
  adamw_k<<<blocks_for(n, 256), 256>>>((float *)p, (float *)m, (float *)v, (float *)g, n, sc, b1, b2, eps, stepSize,
                                       invBc2, decay, zero);
  return launch_rc();
}

// kernels' reduceChunk: squares summed in float64 per chunk in order, then
// the chunk sums in chunk order.
#define REDUCE_CHUNK (1 << 14)

__global__ void gradnorm_chunks_k(double *partial, const float *g, long long n, long long chunks) {
  long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= chunks) return;
  long long lo = c * REDUCE_CHUNK, hi = min(n, lo + REDUCE_CHUNK);
  double s = 0.0;
  for (long long i = lo; i < hi; i++) {
    double x = (double)g[i];
    s = __dadd_rn(s, __dmul_rn(x, x));
  }
  partial[c] = s;
}

__global__ void gradnorm_sum_k(double *out, const double *partial, long long chunks) {
  double s = 0.0;
  for (long long c = 0; c < chunks; c++) s = __dadd_rn(s, partial[c]);
  *out = __dsqrt_rn(s);
}

// partial must hold ceil(n/2^14) + 1 doubles.
extern "C" int rj_grad_norm(double *out, dptr g, long long n, dptr partial) {
  *out = 0;
  if (n <= 0) return 0;
  long long chunks = (n + REDUCE_CHUNK - 1) / REDUCE_CHUNK;
  double *part = (double *)partial;
  gradnorm_chunks_k<<<blocks_for(chunks, 128), 128>>>(part + 1, (const float *)g, n, chunks);
  int rc = launch_rc();
  if (rc) return rc;
  gradnorm_sum_k<<<1, 1>>>(part, part + 1, chunks);
  rc = launch_rc();
  if (rc) return rc;
  return (int)cudaMemcpy(out, part, sizeof(double), cudaMemcpyDeviceToHost);
}
