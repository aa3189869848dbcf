// Device, memory and error plumbing shared by the kernel families.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

static DevErr *dev_err;  // device memory, from rj_open

DevErr *rj_err(void) { return dev_err; }

int rj_sync_each;  // RLJOB_CUDA_SYNC=1: launch_rc waits for each kernel (common.cuh)

// rc_clear returns e, first clearing CUDA's per-thread last error when e
// is a failure, so that the next launch_rc does not report it again under
// another kernel's name (a sticky error, after which the context is lost,
// stays whatever is done).
static int rc_clear(cudaError_t e) {
  if (e != cudaSuccess) cudaGetLastError();
  return (int)e;
}

extern "C" int rj_device_count(int *n) {
  *n = 0;
  cudaError_t e = cudaGetDeviceCount(n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *n = 0;
  }
  return (int)e;
}

#define RJ_MAX_DEV 64

extern "C" int rj_open(int ordinal, char *name, int namelen, unsigned long long *total) {
  if (ordinal != 0) return RC_BADARG;  // device 0 only: CUDA_VISIBLE_DEVICES picks it (device.go's Open)
  const char *se = getenv("RLJOB_CUDA_SYNC");
  rj_sync_each = se && strcmp(se, "1") == 0;
  cudaError_t e = cudaSetDevice(ordinal);
  if (e != cudaSuccess) return (int)e;
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, ordinal);
  if (e != cudaSuccess) return (int)e;
  snprintf(name, namelen, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
  *total = prop.totalGlobalMem;
  if (!dev_err) {
    e = cudaMalloc(&dev_err, sizeof(DevErr));
    if (e != cudaSuccess) return (int)e;
  }
  e = cudaMemset(dev_err, 0, sizeof(DevErr));
  if (e != cudaSuccess) return (int)e;
  return rj_cublas_open(ordinal);
}

extern "C" int rj_close(int ordinal) {
  if (ordinal < 0 || ordinal >= RJ_MAX_DEV) return 0;
  return rj_cublas_close(ordinal);
}

extern "C" int rj_malloc(dptr *p, unsigned long long bytes) {
  void *q = 0;
  cudaError_t e = cudaMalloc(&q, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky: clear it
    *p = 0;
    return (int)e;
  }
  *p = (dptr)q;
  return 0;
}

extern "C" int rj_free(dptr p) { return rc_clear(cudaFree((void *)p)); }

extern "C" int rj_mem_info(unsigned long long *free_b, unsigned long long *total_b) {
  size_t f = 0, t = 0;
  cudaError_t e = cudaMemGetInfo(&f, &t);
  *free_b = f;
  *total_b = t;
  return (int)e;
}

extern "C" int rj_upload(dptr dst, const void *src, unsigned long long bytes) {
  return rc_clear(cudaMemcpy((void *)dst, src, bytes, cudaMemcpyHostToDevice));
}

extern "C" int rj_download(void *dst, dptr src, unsigned long long bytes) {
  return rc_clear(cudaMemcpy(dst, (const void *)src, bytes, cudaMemcpyDeviceToHost));
}

// rj_copy_d2d copies bytes within the device, ordered on the default
// stream after the kernels queued before it (no host synchronisation).
extern "C" int rj_copy_d2d(dptr dst, dptr src, unsigned long long bytes) {
  return rc_clear(cudaMemcpyAsync((void *)dst, (const void *)src, bytes, cudaMemcpyDeviceToDevice, 0));
}

extern "C" int rj_memset0(dptr dst, unsigned long long bytes) { return rc_clear(cudaMemsetAsync((void *)dst, 0, bytes, 0)); }

extern "C" int rj_sync(void) { return rc_clear(cudaDeviceSynchronize()); }

// rj_take_dev_err reads and clears the device-side error word.
extern "C" int rj_take_dev_err(int *code, int *kernel, long long *index, long long *value, long long *limit) {
  DevErr d;
  *code = 0;
  if (!dev_err) return 0;
  cudaError_t e = cudaMemcpy(&d, dev_err, sizeof d, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return rc_clear(e);
  *code = d.code;
  *kernel = d.kernel;
  *index = d.index;
  *value = d.value;
  *limit = d.limit;
  if (d.code != 0) e = cudaMemset(dev_err, 0, sizeof(DevErr));
  return rc_clear(e);
}

static const char *cublas_string(int st) {
  switch (st) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

extern "C" const char *rj_error_string(int rc) {
  if (rc == RC_BADARG) return "bad arguments";
  if (rc == RC_NOCUBLAS) return "cuBLAS not available: no libcublas.so* found by dlopen (set LD_LIBRARY_PATH; this is the cuda_dlcublas build)";
  if (rc >= RC_CUBLAS) return cublas_string(rc - RC_CUBLAS);
  return cudaGetErrorString((cudaError_t)rc);
}
