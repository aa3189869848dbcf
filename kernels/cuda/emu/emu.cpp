// The CUDA emulator's runtime (cuda_runtime.h): fibers for the threads of
// a block, the barriers between them, device memory in host memory, the
// launch checks CUDA makes, and cuBLAS's two GEMM entry points as plain
// loops. One launch at a time (a mutex), blocks in order, the threads of a
// block in rank order between barriers; RLJOB_CUDAEMU_ORDER=reverse runs
// both the other way round, which changes the result of a kernel that
// depends on the order of its threads or blocks (a race on the GPU).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include <map>
#include <mutex>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

extern "C" {
extern char __start_rjemu_shared[] __attribute__((weak));
extern char __stop_rjemu_shared[] __attribute__((weak));
}

namespace rjemu {

Thread *cur;

enum State { RUNNABLE, AT_BLOCK, AT_WARP, DONE };

struct Fiber {
  ucontext_t ctx;
  char *stack;
  Thread t;
  State st;
  int line;       // the source line of the barrier it waits at
  unsigned mask;  // a warp barrier's mask
  unsigned gen;   // shuffles done (selects the exchange buffer)
};

static const size_t kStack = 256 << 10;  // each fiber's stack
static const size_t kGuard = 4096;       // and the page below it
static const int kMaxThreads = 1024;

static std::mutex mu;                           // one launch at a time
static std::vector<Fiber> fibers;               // kMaxThreads, stacks made on first use
static ucontext_t sched;                        // the block scheduler's context
static int running;                             // index of the running fiber
static void (*body_fn)(void *);                 // the launch: the kernel's call
static void *body_arg;                          //   and its arguments
static unsigned long long xch[2][kMaxThreads];  // shuffle exchange, double-buffered
static int reverse_order = -1;                  // RLJOB_CUDAEMU_ORDER=reverse (-1: not read yet)
static int block_n;                             // threads in the running block
static const char *running_kernel;              // for the report of a fault inside it
static cudaError_t last_err;                    // cudaGetLastError's
static char fail_msg[512];                      // what the last launch failure was

static void fail(const char *name, dim3 b, const char *fmt, int a = 0, int c = 0) {
  char what[256];
  snprintf(what, sizeof what, fmt, a, c);
  snprintf(fail_msg, sizeof fail_msg, "rljob CUDA emulator: kernel %s, block (%u,%u,%u): %s", name, b.x, b.y, b.z, what);
  fprintf(stderr, "%s\n", fail_msg);
  last_err = cudaErrorLaunchFailure;
}

static void fiber_entry() {
  body_fn(body_arg);
  fibers[running].st = DONE;  // uc_link returns to the scheduler
}

static void wait(State s, int line, unsigned mask) {
  Fiber &f = fibers[running];
  f.st = s;
  f.line = line;
  f.mask = mask;
  swapcontext(&f.ctx, &sched);
}

void sync_block(int line) { wait(AT_BLOCK, line, 0); }

void sync_warp(unsigned mask, int line) { wait(AT_WARP, line, mask); }

// shfl: mode 0 idx, 1 xor, 2 down, 3 up, within segments of width lanes.
unsigned long long shfl(unsigned mask, unsigned long long v, int src, int width, int mode, int line) {
  Fiber &f = fibers[running];
  int lane = f.t.lane, base = lane & ~(width - 1);
  unsigned long long *buf = xch[f.gen & 1];
  f.gen++;
  buf[f.t.rank] = v;
  wait(AT_WARP, line, mask);
  int s = lane;
  switch (mode) {
    case 0: s = base + (src & (width - 1)); break;
    case 1: s = lane ^ src; if (s >= base + width) s = lane; break;
    case 2: s = lane + src; if (s >= base + width) s = lane; break;
    case 3: s = lane - src; if (s < base) s = lane; break;
  }
  int rank = f.t.warp * 32 + s;
  if (!(mask >> s & 1) || rank >= block_n) return v;  // (the barrier checked that every lane of mask came)
  return buf[rank];
}

static void ensure_fibers(int n) {
  if ((int)fibers.size() < kMaxThreads) fibers.resize(kMaxThreads);
  for (int i = 0; i < n; i++) {
    if (fibers[i].stack) continue;
    // the stack, and below it one page that faults (a stack overflow
    // stops the process instead of writing over another fiber's stack)
    void *p = mmap(0, kGuard + kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED || mprotect(p, kGuard, PROT_NONE) != 0) {
      fprintf(stderr, "rljob CUDA emulator: mmap of a fiber stack: %s\n", strerror(errno));
      abort();
    }
    fibers[i].stack = (char *)p + kGuard;
  }
}

// release_barriers lets through every warp and block whose live threads all
// wait at one barrier. It returns false when no thread can go on (a
// deadlock: a barrier some threads never reach), after saying so.
static bool release_barriers(const char *name, dim3 bid, int n) {
  bool released = false;
  int nwarps = (n + 31) / 32;
  for (int w = 0; w < nwarps; w++) {
    int lo = w * 32, hi = lo + 32 < n ? lo + 32 : n, waiting = 0, live = 0, line = -1;
    unsigned live_mask = 0, mask = 0;
    for (int i = lo; i < hi; i++) {
      if (fibers[i].st == DONE) continue;
      live++;
      live_mask |= 1u << (i - lo);
      if (fibers[i].st == AT_WARP) {
        if (line >= 0 && fibers[i].line != line) {
          fail(name, bid, "warp %d: lanes wait at warp barriers of different lines (%d)", w, fibers[i].line);
          return false;
        }
        line = fibers[i].line;
        mask = fibers[i].mask;
        waiting++;
      }
    }
    if (live == 0 || waiting != live) continue;
    if ((mask & live_mask) != live_mask || (mask & ~live_mask) != 0) {
      fail(name, bid, "warp %d: a warp operation at line %d names exited or missing lanes in its mask", w, line);
      return false;
    }
    for (int i = lo; i < hi; i++)
      if (fibers[i].st == AT_WARP) fibers[i].st = RUNNABLE;
    released = true;
  }
  if (released) return true;
  int live = 0, waiting = 0, line = -1;
  for (int i = 0; i < n; i++) {
    if (fibers[i].st == DONE) continue;
    live++;
    if (fibers[i].st != AT_BLOCK) continue;
    if (line >= 0 && fibers[i].line != line) {
      fail(name, bid, "__syncthreads at line %d and at line %d: a barrier in divergent code", line, fibers[i].line);
      return false;
    }
    line = fibers[i].line;
    waiting++;
  }
  if (live == 0) return true;
  if (waiting != live) {
    fail(name, bid, "deadlock: %d of %d live threads wait at __syncthreads, the others at a warp barrier", waiting, live);
    return false;
  }
  for (int i = 0; i < n; i++)
    if (fibers[i].st == AT_BLOCK) fibers[i].st = RUNNABLE;
  return true;
}

static void poison_shared() {
  uintptr_t lo = (uintptr_t)__start_rjemu_shared, hi = (uintptr_t)__stop_rjemu_shared;
  if (lo && hi > lo) memset(__start_rjemu_shared, 0xff, hi - lo);
}

// run_block runs the threads of one block to their end; false after a
// failure (fail said what).
static bool run_block(const char *name, dim3 grid, dim3 block, uint3 bid) {
  int n = block.x * block.y * block.z;
  block_n = n;
  for (int i = 0; i < n; i++) {
    Fiber &f = fibers[i];
    f.t.tid = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
    f.t.bid = bid;
    f.t.bdim = block;
    f.t.gdim = grid;
    f.t.rank = i;
    f.t.lane = i % 32;
    f.t.warp = i / 32;
    f.st = RUNNABLE;
    f.gen = 0;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = &sched;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  poison_shared();
  dim3 b3(bid.x, bid.y, bid.z);
  for (;;) {
    for (int j = 0; j < n; j++) {
      int i = reverse_order ? n - 1 - j : j;
      if (fibers[i].st != RUNNABLE) continue;
      running = i;
      cur = &fibers[i].t;
      swapcontext(&sched, &fibers[i].ctx);
    }
    bool all_done = true;
    for (int i = 0; i < n && all_done; i++) all_done = fibers[i].st == DONE;
    if (all_done) return true;
    if (!release_barriers(name, b3, n)) return false;
  }
}

#if defined(__SANITIZE_ADDRESS__)
// said_where names the kernel, block and thread that AddressSanitizer
// stopped in (its own report shows only addresses without a symbolizer).
static void said_where() {
  if (!running_kernel || !cur) return;
  fprintf(stderr, "rljob CUDA emulator: the fault above is in kernel %s, block (%u,%u,%u), thread (%u,%u,%u)\n",
          running_kernel, cur->bid.x, cur->bid.y, cur->bid.z, cur->tid.x, cur->tid.y, cur->tid.z);
}
#endif

static bool bad_config(dim3 g, dim3 b) {
  unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
  return g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535 || nt == 0 ||
         nt > (unsigned long long)kMaxThreads || b.x > 1024 || b.y > 1024 || b.z > 64;
}

void launch(const char *name, dim3 grid, dim3 block, void (*body)(void *), void *arg) {
  std::lock_guard<std::mutex> lock(mu);
  if (reverse_order < 0) {
    const char *o = getenv("RLJOB_CUDAEMU_ORDER");
    reverse_order = o && strcmp(o, "reverse") == 0;
  }
  if (bad_config(grid, block)) {
    snprintf(fail_msg, sizeof fail_msg, "rljob CUDA emulator: kernel %s: invalid configuration grid (%u,%u,%u) block (%u,%u,%u)",
             name, grid.x, grid.y, grid.z, block.x, block.y, block.z);
    last_err = cudaErrorInvalidConfiguration;
    return;
  }
  ensure_fibers(block.x * block.y * block.z);
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_set_death_callback(said_where);
#endif
  running_kernel = name;
  body_fn = body;
  body_arg = arg;
  unsigned long long nb = (unsigned long long)grid.x * grid.y * grid.z;
  for (unsigned long long j = 0; j < nb; j++) {
    unsigned long long k = reverse_order ? nb - 1 - j : j;
    uint3 bid{(unsigned)(k % grid.x), (unsigned)(k / grid.x % grid.y), (unsigned)(k / ((unsigned long long)grid.x * grid.y))};
    if (!run_block(name, grid, block, bid)) break;
  }
  cur = 0;
  running_kernel = 0;
}

// reset_error and set_order are for the emulator's own tests (emu_test.cu):
// a launch failure is sticky, as on the GPU, where only a new process
// clears it.
void reset_error() {
  last_err = cudaSuccess;
  fail_msg[0] = 0;
}

void set_order(bool reverse) { reverse_order = reverse; }

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
