// cuda_runtime.h of rljob's CUDA emulator: the part of the CUDA runtime and
// of the device language that kernels/cuda/csrc uses, on the CPU, so that
// every kernel runs and is tested on a machine without a GPU
// (docs/cuda.md, "The emulator"). Each CUDA thread of a block is a fiber;
// __syncthreads, __syncwarp and the warp shuffles are barriers between
// them. Launches are synchronous, blocks run one after another. Device
// memory is host memory. Float operations are IEEE single and double
// rounded one by one (-ffp-contract=off), as nvcc -fmad=false compiles
// them; fmaf and fma are the correctly rounded C library functions, as on
// the GPU. What it cannot show: timing, the memory model, cuBLAS's own
// numerics (emu.cpp has a plain loop in its place).
#pragma once
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <tuple>
#include <utility>

// ---- the device language ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
// __shared__ variables are static, in one section that emu.cpp fills
// with 0xff bytes (NaN, -1) before each block: a kernel that reads shared
// memory it did not write sees garbage, as on the GPU, not the last block's.
#define __shared__ static __attribute__((section("rjemu_shared"), aligned(16)))

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace rjemu {
struct Thread {
  uint3 tid, bid;
  dim3 bdim, gdim;
  int lane, warp, rank;
};
extern Thread *cur;  // the running fiber's thread

void sync_block(int line);
void sync_warp(unsigned mask, int line);
unsigned long long shfl(unsigned mask, unsigned long long v, int src, int width, int mode, int line);
void launch(const char *name, dim3 grid, dim3 block, void (*body)(void *), void *arg);

template <class T>
T shfl_t(unsigned mask, T v, int src, int width, int mode, int line) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  unsigned long long u = 0;
  memcpy(&u, &v, sizeof(T));
  u = shfl(mask, u, src, width, mode, line);
  T r;
  memcpy(&r, &u, sizeof(T));
  return r;
}

// Launcher holds a kernel and its configuration; calling it with the
// kernel's arguments runs the grid (kernel<<<grid, block>>>(args) becomes
// rjemu::launcher(kernel, grid, block)(args) in the sources emu.mk
// rewrites).
template <class... P>
struct Launcher {
  void (*k)(P...);
  const char *name;
  dim3 grid, block;
  template <class... A>
  void operator()(A &&...a) {
    struct Args {
      void (*k)(P...);
      std::tuple<P...> t;
    } args{k, std::tuple<P...>(std::forward<A>(a)...)};
    launch(name, grid, block, [](void *p) {
      Args *g = (Args *)p;
      std::apply(g->k, g->t);
    }, &args);
  }
};
template <class... P>
Launcher<P...> launcher(void (*k)(P...), const char *name, dim3 grid, dim3 block, size_t smem = 0, void *stream = 0) {
  (void)smem;
  (void)stream;
  return Launcher<P...>{k, name, grid, block};
}
}  // namespace rjemu

#define threadIdx (rjemu::cur->tid)
#define blockIdx (rjemu::cur->bid)
#define blockDim (rjemu::cur->bdim)
#define gridDim (rjemu::cur->gdim)
#define warpSize 32
#define __syncthreads() rjemu::sync_block(__LINE__)
#define __syncwarp(...) rjemu::sync_warp((__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 0xffffffffu, __LINE__)
#define __shfl_sync(mask, v, src, ...) rjemu::shfl_t(mask, v, src, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, 0, __LINE__)
#define __shfl_xor_sync(mask, v, m, ...) rjemu::shfl_t(mask, v, m, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, 1, __LINE__)
#define __shfl_down_sync(mask, v, d, ...) rjemu::shfl_t(mask, v, d, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, 2, __LINE__)
#define __shfl_up_sync(mask, v, d, ...) rjemu::shfl_t(mask, v, d, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, 3, __LINE__)

// ---- intrinsics: each operation rounded once, as the _rn forms are ----
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
static inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static inline float __int_as_float(int u) { float x; memcpy(&x, &u, 4); return x; }
static inline int __float_as_int(float x) { int u; memcpy(&u, &x, 4); return u; }
static inline double __longlong_as_double(long long u) { double x; memcpy(&x, &u, 8); return x; }
static inline long long __double_as_longlong(double x) { long long u; memcpy(&u, &x, 8); return u; }
// cvt.rni.s32.f64: nearest even, saturating, NaN → 0.
static inline int __double2int_rn(double x) {
  if (x != x) return 0;
  double r = nearbyint(x);
  if (r <= -2147483648.0) return (int)0x80000000u;
  if (r >= 2147483647.0) return 0x7fffffff;
  return (int)r;
}
static inline int atomicCAS(int *p, int cmp, int val) {
  __atomic_compare_exchange_n(p, &cmp, val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
static inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }

// ---- the runtime ----
typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchFailure = 719,
} cudaError_t;
typedef enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
} cudaMemcpyKind;
typedef enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
} cudaDataType;
typedef void *cudaStream_t;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaMalloc(void **p, size_t n);
template <class T>
cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void *dst, int v, size_t n);
cudaError_t cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t s = 0);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
