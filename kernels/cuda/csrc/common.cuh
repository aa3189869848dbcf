// Shared device helpers of rljob's CUDA kernels: Go's float semantics
// (max, math.Exp and math.Log as Go computes them on amd64, kernels/expf.go's
// expf), the launch error convention and the device-side error word.
//
// Every .cu file is compiled with -fmad=false (Makefile): nvcc must not fuse
// a*b+c into an FMA where Go rounds twice; the kernels that mirror an FMA
// chain of the CPU (the batch-invariant GEMM) call fmaf explicitly.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>
#include "rljob_cuda.h"

// rc_t is what every exported launcher returns: 0, a cudaError_t, or one of
// the codes below (argument errors found before launching).
typedef int rc_t;
#define RC_BADARG 10001

// Device-side validation errors (a token id out of range, ...) are recorded
// in one DevErr in device memory (allocated by rj_open; kernels get it as
// their first argument, from rj_err()); the first one wins, and
// rj_take_dev_err reads and clears it after a synchronisation.
struct DevErr {
  int code;  // 0: none; 1: index out of range
  int kernel;
  long long index;
  long long value;
  long long limit;
};
DevErr *rj_err(void);

enum KernelID {
  K_EMBEDDING_FWD = 1,
  K_EMBEDDING_BWD = 2,
  K_ROPE = 3,
  K_HEAD = 4,
  K_SAMPLE = 5,
  K_ATTN_DECODE = 6,
};

__device__ __forceinline__ void dev_fail(DevErr *err, int kernel, long long index, long long value, long long limit) {
  if (atomicCAS(&err->code, 0, 1) == 0) {
    err->kernel = kernel;
    err->index = index;
    err->value = value;
    err->limit = limit;
  }
}

// rj_sync_each is set by RLJOB_CUDA_SYNC=1 at rj_open: every launcher
// then waits for its kernel, so that a fault inside one is reported under
// its own name instead of by the next call that synchronises (slower: for
// finding a failing kernel, as gpu-check.sh's tests run).
extern int rj_sync_each;

static inline rc_t launch_rc() {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && rj_sync_each) {
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess) cudaGetLastError();
  }
  return (rc_t)e;
}

static inline unsigned blocks_for(long long n, int threads) {
  long long b = (n + threads - 1) / threads;
  return (unsigned)(b < 1 ? 1 : b);
}

// Go's float semantics (max, math.Exp, math.Log, expf): the header lives
// in internal/gomathcheck, whose host test checks it against Go bit for bit
// (there, Go's build cache sees its changes).
#include "../internal/gomathcheck/gomath.h"
