// The CUDA emulator's launches (cuda_runtime.h): fibers for the threads of
// a block, the barriers and shuffles between them, and the launch checks
// CUDA makes; device memory, the runtime calls and cuBLAS are in
// emu_runtime.cpp. One launch at a time (a mutex), blocks in order, the
// threads of a block in rank order between barriers;
// RLJOB_CUDAEMU_ORDER=reverse runs both the other way round, which changes
// the result of a kernel that depends on the order of its threads or
// blocks (a race on the GPU).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include <mutex>
#include <vector>

#include "cuda_runtime.h"
#include "emu_internal.h"

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

std::mutex mu;                                  // one launch or runtime call at a time
static std::vector<Fiber> fibers;               // kMaxThreads, stacks made on first use
static ucontext_t sched;                        // the block scheduler's context
static int running;                             // index of the running fiber
static void (*body_fn)(void *);                 // the launch: the kernel's call
static void *body_arg;                          //   and its arguments
static unsigned long long xch[2][kMaxThreads];  // shuffle exchange, double-buffered
static int reverse_order = -1;                  // RLJOB_CUDAEMU_ORDER=reverse (-1: not read yet)
static int block_n;                             // threads in the running block
static const char *running_kernel;              // for the report of a fault inside it
cudaError_t last_err;                           // cudaGetLastError's
char fail_msg[512];                             // what the last launch failure was

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

}  // namespace rjemu
