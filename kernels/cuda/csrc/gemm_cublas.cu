// The cuBLAS GEMM fast path: FP32, TF32 tensor cores, or BF16 inputs with
// FP32 accumulation and output (cublasGemmEx). Not batch-invariant (cuBLAS
// picks split-K and tile shapes by problem size): the trainer's forward for
// log-probabilities uses gemm_bi.cu; this is for the training step's other
// products, where only a tolerance is promised.
#include <cublas_v2.h>

#include "common.cuh"

cublasHandle_t rj_cublas(int ordinal);

// Row-major C (M,N) = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap
// the operands and the sizes.
extern "C" int rj_gemm_cublas(int ordinal, int mode, int transA, int transB, int M, int N, int K, float alpha, dptr a,
                              int lda, dptr b, int ldb, float beta, dptr c, int ldc) {
  cublasHandle_t h = rj_cublas(ordinal);
  if (!h) return RC_CUBLAS + CUBLAS_STATUS_NOT_INITIALIZED;
  if (M <= 0 || N <= 0 || K <= 0) return RC_BADARG;
  cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t st;
  switch (mode) {
    case 0:
    case 1:
      st = cublasSetMathMode(h, mode == 1 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
      if (st != CUBLAS_STATUS_SUCCESS) return RC_CUBLAS + (int)st;
      st = cublasSgemm(h, opB, opA, N, M, K, &alpha, (const float *)b, ldb, (const float *)a, lda, &beta, (float *)c, ldc);
      break;
    case 2:
      st = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
      if (st != CUBLAS_STATUS_SUCCESS) return RC_CUBLAS + (int)st;
      st = cublasGemmEx(h, opB, opA, N, M, K, &alpha, (const void *)b, CUDA_R_16BF, ldb, (const void *)a, CUDA_R_16BF, lda,
                        &beta, (void *)c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      break;
    default:
      return RC_BADARG;
  }
  if (st != CUBLAS_STATUS_SUCCESS) return RC_CUBLAS + (int)st;
  return launch_rc();
}

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
