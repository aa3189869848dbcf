// float32 → bfloat16 rounding on the device (mirrors kernels.BF16), for the
// BF16 cuBLAS path.
#include "common.cuh"

// kernels.BF16: round to nearest even, a subnormal to ±0, a NaN to a quiet NaN.
__device__ __forceinline__ unsigned short bf16_round(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0) return (unsigned short)(u >> 16) & 0x8000;
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(u >> 16) | 0x40;
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}

__global__ void to_bf16_k(unsigned short *dst, const float *src, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  dst[i] = bf16_round(src[i]);
}

// to_bf16_t_k: dst (cols, rows) = bf16(src (rows, cols))ᵀ, through a
// 32×32 tile in shared memory (reads and writes both coalesced).
#define RJ_TT 32
__global__ void to_bf16_t_k(unsigned short *dst, const float *src, int rows, int cols) {
  __shared__ unsigned short tile[RJ_TT][RJ_TT + 1];
  int c = blockIdx.x * RJ_TT + threadIdx.x;
  for (int j = threadIdx.y; j < RJ_TT; j += blockDim.y) {
    int r = blockIdx.y * RJ_TT + j;
    if (r < rows && c < cols) tile[j][threadIdx.x] = bf16_round(src[(long long)r * cols + c]);
  }
  __syncthreads();
  int r = blockIdx.y * RJ_TT + threadIdx.x;
  for (int j = threadIdx.y; j < RJ_TT; j += blockDim.y) {
    int cc = blockIdx.x * RJ_TT + j;
    if (r < rows && cc < cols) dst[(long long)cc * rows + r] = tile[threadIdx.x][j];
  }
}

// round_bf16_k rounds x to bf16 in place, kept as float32 (kernels'
// BF16Float(BF16(x)): the bf16 bits in the high half).
__global__ void round_bf16_k(float *x, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  x[i] = __uint_as_float((unsigned)bf16_round(x[i]) << 16);
}

extern "C" int rj_to_bf16_t(dptr dst, dptr src, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return 0;
  dim3 grid((cols + RJ_TT - 1) / RJ_TT, (rows + RJ_TT - 1) / RJ_TT), block(RJ_TT, 8);
  to_bf16_t_k<<<grid, block>>>((unsigned short *)dst, (const float *)src, rows, cols);
  return launch_rc();
}

extern "C" int rj_round_bf16(dptr x, long long n) {
  if (n <= 0) return 0;
  round_bf16_k<<<blocks_for(n, 256), 256>>>((float *)x, n);
  return launch_rc();
}

extern "C" int rj_to_bf16(dptr dst, dptr src, long long n) {
  if (n <= 0) return 0;
  to_bf16_k<<<blocks_for(n, 256), 256>>>((unsigned short *)dst, (const float *)src, n);
  return launch_rc();
}
