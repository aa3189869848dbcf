// The CUDA emulator's device memory (host memory, with the checks the
// runtime makes and the bytes it counts), the runtime calls rljob's .cu
// files make, and cuBLAS's two GEMM entry points as plain loops.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <mutex>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "emu_internal.h"

namespace rjemu {

// ---- device memory ----

static std::map<uintptr_t, size_t> allocs;  // base → bytes asked for (a copy past them fails)
static size_t in_use;
static size_t total_mem;

static size_t total() {
  if (total_mem) return total_mem;
  total_mem = (size_t)16 << 30;
  const char *s = getenv("RLJOB_CUDAEMU_MEM");  // bytes of device memory, default 16 GiB
  if (s && *s) total_mem = strtoull(s, 0, 10);
  return total_mem;
}

// padded is what an allocation of n bytes takes (CUDA's 256-byte granules).
static size_t padded(size_t n) { return n == 0 ? 256 : (n + 255) & ~(size_t)255; }

// in_device says whether [p, p+n) lies in one allocation.
static bool in_device(const void *p, size_t n) {
  uintptr_t a = (uintptr_t)p;
  auto it = allocs.upper_bound(a);
  if (it == allocs.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

static cudaError_t set_err(cudaError_t e) {
  if (e != cudaSuccess) last_err = e;
  return e;
}

}  // namespace rjemu

using namespace rjemu;

cudaError_t cudaGetDeviceCount(int *n) {
  *n = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) { return set_err(d == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
  if (d != 0) return set_err(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "rljob CUDA emulator on the CPU");
  p->totalGlobalMem = total();
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  *p = 0;
  size_t r = padded(n);
  if (in_use + r > total()) return set_err(cudaErrorMemoryAllocation);
  void *q = 0;  // n bytes, not r: under AddressSanitizer a kernel's access past n is reported
  if (posix_memalign(&q, 256, n ? n : 1) != 0) return set_err(cudaErrorMemoryAllocation);
  // cudaMalloc's memory is not cleared: make a read before a write show
  // (up to 64 MiB, so that a test that fills the device does not fill RAM)
  memset(q, 0xff, n < ((size_t)64 << 20) ? n : 0);
  allocs[(uintptr_t)q] = n;
  in_use += r;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  std::lock_guard<std::mutex> lock(mu);
  if (!p) return cudaSuccess;
  auto it = allocs.find((uintptr_t)p);
  if (it == allocs.end()) return set_err(cudaErrorInvalidDevicePointer);
  in_use -= padded(it->second);
  allocs.erase(it);
  free(p);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
  std::lock_guard<std::mutex> lock(mu);
  *total_b = total();
  *free_b = total() - in_use;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
  std::lock_guard<std::mutex> lock(mu);
  if (n == 0) return cudaSuccess;
  bool dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((dd && !in_device(dst, n)) || (sd && !in_device(src, n))) return set_err(cudaErrorInvalidValue);
  memmove(dst, src, n);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, n, kind);
}

cudaError_t cudaMemset(void *dst, int v, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  if (n == 0) return cudaSuccess;
  if (!in_device(dst, n)) return set_err(cudaErrorInvalidValue);
  memset(dst, v, n);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t) { return cudaMemset(dst, v, n); }

cudaError_t cudaDeviceSynchronize(void) { return last_err == cudaErrorLaunchFailure ? last_err : cudaSuccess; }

cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_err;
  if (e != cudaErrorLaunchFailure) last_err = cudaSuccess;  // a launch failure is sticky, as on the GPU
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_err; }

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return fail_msg[0] ? fail_msg : "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return fail_msg[0] ? fail_msg : "unspecified launch failure";
    default: return "unknown error";
  }
}

// ---- cuBLAS: column-major C = alpha·op(A)·op(B) + beta·C, one fmaf per k ----

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
  *h = (cublasHandle_t)1;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

static float ld_elem(const void *p, cudaDataType t, long long i) {
  if (t == CUDA_R_32F) return ((const float *)p)[i];
  unsigned u = (unsigned)((const unsigned short *)p)[i] << 16;
  return __uint_as_float(u);
}

static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                           cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, float beta, float *C,
                           int ldc) {
  if (m < 0 || n < 0 || k < 0 || ldc < m) return CUBLAS_STATUS_INVALID_VALUE;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float s = 0;
      for (int l = 0; l < k; l++) {
        float a = ld_elem(A, at, ta == CUBLAS_OP_N ? i + (long long)l * lda : l + (long long)i * lda);
        float b = ld_elem(B, bt, tb == CUBLAS_OP_N ? l + (long long)j * ldb : j + (long long)l * ldb);
        s = fmaf(a, b, s);
      }
      float *c = &C[i + (long long)j * ldc];
      *c = beta == 0 ? alpha * s : alpha * s + beta * *c;
    }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
  std::lock_guard<std::mutex> lock(mu);
  return gemm(ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, *beta, C, ldc);
}

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t, cublasGemmAlgo_t) {
  if (ct != CUDA_R_32F || (at != CUDA_R_32F && at != CUDA_R_16BF) || bt != at) return CUBLAS_STATUS_NOT_SUPPORTED;
  std::lock_guard<std::mutex> lock(mu);
  return gemm(ta, tb, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb, *(const float *)beta, (float *)C, ldc);
}
