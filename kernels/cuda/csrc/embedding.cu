// Embedding forward and backward (mirrors kernels/ops.go).
#include "common.cuh"

__global__ void embedding_fwd_k(DevErr *err, float *out, const float *wte, const int *tokens, int N, int C, int V) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)N * C) return;
  int n = (int)(i / C), c = (int)(i % C);
  int t = tokens[n];
  if (t < 0 || t >= V) {
    if (c == 0) dev_fail(err, K_EMBEDDING_FWD, n, t, V);
    out[i] = 0.0f;
    return;
  }
  out[i] = wte[(long long)t * C + c];
}

// One thread per channel, rows summed in the order n = 0..N-1 (as the CPU
// kernel, which splits channels among goroutines for the same reason).
__global__ void embedding_bwd_k(DevErr *err, float *dwte, const float *dout, const int *tokens, int N, int C, int V) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int n = 0; n < N; n++) {
    int t = tokens[n];
    if (t < 0 || t >= V) {
      if (c == 0) dev_fail(err, K_EMBEDDING_BWD, n, t, V);
      continue;
    }
    float *d = dwte + (long long)t * C + c;
    *d = __fadd_rn(*d, dout[(long long)n * C + c]);
  }
}

extern "C" int rj_embedding_fwd(dptr out, dptr wte, dptr tokens, int N, int C, int V) {
  if (N <= 0 || C <= 0) return 0;
  embedding_fwd_k<<<blocks_for((long long)N * C, 256), 256>>>(rj_err(), (float *)out, (const float *)wte, (const int *)tokens, N, C, V);
  return launch_rc();
}

extern "C" int rj_embedding_bwd(dptr dwte, dptr dout, dptr tokens, int N, int C, int V) {
  if (N <= 0 || C <= 0) return 0;
  embedding_bwd_k<<<blocks_for(C, 128), 128>>>(rj_err(), (float *)dwte, (const float *)dout, (const int *)tokens, N, C, V);
  return launch_rc();
}
