// Row scatter for the trainer's device-resident KV caches: the rows that a
// decode pass appends (each sequence's new key and value at one layer) are
// staged on the host, uploaded in one copy and scattered by one launch
// into their caches, instead of one cudaMemcpy per row (docs/cuda.md).
#include "common.cuh"

// One block per row: row r copies tab[3r+2] floats from src + tab[3r+1]
// to the device address tab[3r]. A plain copy, no arithmetic.
__global__ void scatter_rows_k(const float *src, const unsigned long long *tab) {
  const unsigned long long *e = tab + 3LL * blockIdx.x;
  float *dst = (float *)e[0];
  const float *s = src + e[1];
  long long n = (long long)e[2];
  for (long long i = threadIdx.x; i < n; i += blockDim.x) dst[i] = s[i];
}

extern "C" int rj_scatter_rows(dptr src, dptr tab, int rows) {
  if (rows < 0) return RC_BADARG;
  if (rows == 0) return 0;
  scatter_rows_k<<<rows, 128>>>((const float *)src, (const unsigned long long *)tab);
  return launch_rc();
}
