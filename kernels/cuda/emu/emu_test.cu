// Tests of the CUDA emulator itself (make test-cuda-emu runs them before
// the CUDA tests): the warp shuffles against CUDA's definitions, barriers,
// shared memory that starts as garbage, the faults it must report (a
// barrier in divergent code, a deadlock, a bad launch), device memory
// checks, the reverse order, CUB's sort and the cuBLAS loops.
#include <cub/cub.cuh>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cublas_v2.h"
#include "cuda_runtime.h"

namespace rjemu {
void reset_error();
void set_order(bool reverse);
}  // namespace rjemu

static int failures;
#define CHECK(cond, ...)                              \
  do {                                                \
    if (!(cond)) {                                    \
      fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                   \
      fprintf(stderr, "\n");                          \
      failures++;                                     \
    }                                                 \
  } while (0)

__global__ void shfl_k(int *out, int width) {
  int t = threadIdx.x, v = 1000 * (t / 32) + t % 32;
  out[4 * t + 0] = __shfl_sync(0xffffffff, v, 5, width);
  out[4 * t + 1] = __shfl_xor_sync(0xffffffff, v, 3, width);
  out[4 * t + 2] = __shfl_down_sync(0xffffffff, v, 2, width);
  out[4 * t + 3] = __shfl_up_sync(0xffffffff, v, 2, width);
}

static void test_shuffles() {
  int *out;
  cudaMalloc(&out, 64 * 4 * sizeof(int));
  for (int width : {32, 8}) {
    shfl_k<<<1, 64>>>(out, width);
    CHECK(cudaGetLastError() == cudaSuccess, "shfl_k launch");
    for (int t = 0; t < 64; t++) {
      int lane = t % 32, base = lane / width * width, w = 1000 * (t / 32);
      int idx = base + 5 % width, x = lane ^ 3, dn = lane + 2 < base + width ? lane + 2 : lane,
          upl = lane - 2 >= base ? lane - 2 : lane;
      if (x >= base + width) x = lane;
      CHECK(out[4 * t] == w + idx, "width %d lane %d: shfl %d, want %d", width, t, out[4 * t], w + idx);
      CHECK(out[4 * t + 1] == w + x, "width %d lane %d: xor %d, want %d", width, t, out[4 * t + 1], w + x);
      CHECK(out[4 * t + 2] == w + dn, "width %d lane %d: down %d, want %d", width, t, out[4 * t + 2], w + dn);
      CHECK(out[4 * t + 3] == w + upl, "width %d lane %d: up %d, want %d", width, t, out[4 * t + 3], w + upl);
    }
  }
  cudaFree(out);
}

__global__ void rotate_k(int *out) {
  __shared__ int s[96];
  s[threadIdx.x] = threadIdx.x + 100 * blockIdx.x;
  __syncthreads();
  out[blockIdx.x * 96 + threadIdx.x] = s[(threadIdx.x + 1) % 96];
}

// garbage_k reads a shared word no thread wrote.
__global__ void garbage_k(unsigned *out) {
  __shared__ unsigned s[2];
  if (threadIdx.x == 0) s[0] = 7;
  __syncthreads();
  out[blockIdx.x] = s[blockIdx.x & 1];
}

static void test_barriers_and_shared() {
  int *out;
  cudaMalloc(&out, 3 * 96 * sizeof(int));
  rotate_k<<<3, 96>>>(out);
  CHECK(cudaGetLastError() == cudaSuccess, "rotate_k launch");
  for (int b = 0; b < 3; b++)
    for (int t = 0; t < 96; t++)
      CHECK(out[b * 96 + t] == (t + 1) % 96 + 100 * b, "rotate block %d thread %d: %d", b, t, out[b * 96 + t]);
  garbage_k<<<2, 32>>>((unsigned *)out);
  CHECK(out[0] == 7 && (unsigned)out[1] == 0xffffffffu, "shared memory: %d and %#x, want 7 and 0xffffffff", out[0],
        (unsigned)out[1]);
  cudaFree(out);
}

__global__ void divergent_k(int *out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void deadlock_k(int *out) {
  if (threadIdx.x % 32 < 16)
    __syncwarp();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void exited_lane_k(int *out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffff, (int)threadIdx.x, 1);
}

static void expect_failure(const char *what, const char *needle) {
  cudaError_t e = cudaGetLastError();
  const char *msg = cudaGetErrorString(e);
  CHECK(e == cudaErrorLaunchFailure && strstr(msg, needle), "%s: error %d \"%s\", want a launch failure saying \"%s\"",
        what, (int)e, msg, needle);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "%s: the failure is not sticky", what);
  rjemu::reset_error();
}

static void test_faults() {
  int *out;
  cudaMalloc(&out, 64 * sizeof(int));
  divergent_k<<<1, 64>>>(out);
  expect_failure("divergent __syncthreads", "divergent");
  deadlock_k<<<1, 64>>>(out);
  expect_failure("deadlock", "deadlock");
  exited_lane_k<<<1, 32>>>(out);
  expect_failure("shuffle with an exited lane", "exited");
  rotate_k<<<1, 1025>>>(out);
  cudaError_t e = cudaGetLastError();
  CHECK(e == cudaErrorInvalidConfiguration, "1025 threads: error %d", (int)e);
  CHECK(cudaGetLastError() == cudaSuccess, "an invalid configuration is not sticky");
  rotate_k<<<dim3(1, 65536), 96>>>(out);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 65536 launched");
  cudaFree(out);
}

static void test_memory() {
  void *p = 0;
  CHECK(cudaMalloc(&p, (size_t)64 << 30) == cudaErrorMemoryAllocation && p == 0, "64 GiB allocated");
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation, "allocation failure not recorded");
  size_t f0, t0, f1, t1;
  cudaMemGetInfo(&f0, &t0);
  CHECK(cudaMalloc(&p, 1000) == cudaSuccess, "1000 bytes");
  cudaMemGetInfo(&f1, &t1);
  CHECK(f0 - f1 == 1024 && t0 == t1, "free memory went from %zu to %zu", f0, f1);
  CHECK(((unsigned char *)p)[999] == 0xff, "new device memory is not filled with 0xff");
  char host[16];
  CHECK(cudaMemcpy(host, (char *)p + 1000, 16, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
        "a copy past the allocation's end passed");
  CHECK(cudaMemcpy(host, host + 8, 8, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
        "a copy to host memory as device memory passed");
  CHECK(cudaMemcpy(host, p, 16, cudaMemcpyDeviceToHost) == cudaSuccess, "a good copy failed");
  CHECK(cudaFree(host) == cudaErrorInvalidDevicePointer, "freed host memory");
  cudaGetLastError();
  cudaFree(p);
}

__global__ void last_writer_k(int *out) {
  if (threadIdx.x == 0) out[0] = blockIdx.x;
}

static void test_order() {
  int *out;
  cudaMalloc(&out, sizeof(int));
  last_writer_k<<<4, 32>>>(out);
  int fwd = *out;
  rjemu::set_order(true);
  last_writer_k<<<4, 32>>>(out);
  int rev = *out;
  rjemu::set_order(false);
  CHECK(fwd == 3 && rev == 0, "last writer %d forward, %d reverse; want 3 and 0", fwd, rev);
  cudaFree(out);
}

static void test_cub_sort() {
  double keys[7] = {0.5, 2, -0.0, 0.5, 0, 7, -1};
  int ids[7] = {0, 1, 2, 3, 4, 5, 6}, offs[3] = {0, 5, 7};
  double ko[7];
  int io[7];
  size_t bytes = 0;
  cub::DeviceSegmentedRadixSort::SortPairsDescending((void *)0, bytes, keys, ko, ids, io, 7, 2, offs, offs + 1);
  CHECK(bytes > 0, "no temporary storage asked");
  char tmp[256];
  cub::DeviceSegmentedRadixSort::SortPairsDescending(tmp, bytes, keys, ko, ids, io, 7, 2, offs, offs + 1);
  int want[7] = {1, 0, 3, 2, 4, 5, 6};
  for (int i = 0; i < 7; i++) CHECK(io[i] == want[i], "sorted position %d: id %d, want %d", i, io[i], want[i]);
}

static void test_cublas() {
  // A (2x3) and B (3x2), column-major: C = alpha·A·B + beta·C.
  float A[6] = {1, 4, 2, 5, 3, 6}, B[6] = {7, 9, 11, 8, 10, 12}, C[4] = {1, 1, 1, 1};
  float alpha = 1, beta = 2;
  cublasHandle_t h;
  cublasCreate_v2(&h);
  cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, A, 2, B, 3, &beta, C, 2);
  float want[4] = {58 + 2, 139 + 2, 64 + 2, 154 + 2};
  for (int i = 0; i < 4; i++) CHECK(C[i] == want[i], "sgemm C[%d] = %g, want %g", i, C[i], want[i]);
  float At[6] = {1, 2, 3, 4, 5, 6};  // Aᵀ column-major (3x2)
  beta = 0;
  C[0] = C[1] = C[2] = C[3] = __uint_as_float(0x7fc00000);  // beta 0 must not read C
  cublasSgemm_v2(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 3, &alpha, At, 3, B, 3, &beta, C, 2);
  for (int i = 0; i < 4; i++) CHECK(C[i] == want[i] - 2, "sgemm(T) C[%d] = %g, want %g", i, C[i], want[i] - 2);
  cublasDestroy_v2(h);
}

int main() {
  test_shuffles();
  test_barriers_and_shared();
  test_faults();
  test_memory();
  test_order();
  test_cub_sort();
  test_cublas();
  if (failures) {
    fprintf(stderr, "emu_test: %d failures\n", failures);
    return 1;
  }
  printf("emu_test: ok\n");
  return 0;
}
