// float32 → bfloat16 rounding on the device (mirrors kernels.BF16), for the
// BF16 cuBLAS path.
#include "common.cuh"

// kernels.BF16: round to nearest even, a subnormal to ±0, a NaN to a quiet NaN.
__global__ void to_bf16_k(unsigned short *dst, const float *src, long long n) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned u = __float_as_uint(src[i]);
  unsigned short r;
  if ((u & 0x7f800000u) == 0) {
    r = (unsigned short)(u >> 16) & 0x8000;
  } else if ((u & 0x7fffffffu) > 0x7f800000u) {
    r = (unsigned short)(u >> 16) | 0x40;
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    r = (unsigned short)(u >> 16);
  }
  dst[i] = r;
}

extern "C" int rj_to_bf16(dptr dst, dptr src, long long n) {
  if (n <= 0) return 0;
  to_bf16_k<<<blocks_for(n, 256), 256>>>((unsigned short *)dst, (const float *)src, n);
  return launch_rc();
}
