// The cuBLAS GEMM fast path: FP32, TF32 tensor cores, or BF16 inputs with
// FP32 accumulation and output (cublasGemmEx). Not batch-invariant (cuBLAS
// picks split-K and tile shapes by problem size): the trainer's forward for
// log-probabilities uses gemm_bi.cu; this is for the training step's other
// products, where only a tolerance is promised.
//
// Two builds of this file: gemm_cublas.o calls cuBLAS linked statically
// (bin/rljob-cuda); gemm_cublas_dl.o (-DRJ_CUBLAS_DL, the cuda_dlcublas
// build tag) loads libcublas.so at run time with dlopen, which keeps a test
// binary small enough to copy to a GPU machine and uses whichever cuBLAS
// that machine has (the five entry points used here have kept their ABI).
#include <cublas_v2.h>
#ifdef RJ_CUBLAS_DL
#include <dlfcn.h>
#endif

#include "common.cuh"

struct CublasAPI {
  cublasStatus_t (*create)(cublasHandle_t *);
  cublasStatus_t (*destroy)(cublasHandle_t);
  cublasStatus_t (*set_math)(cublasHandle_t, cublasMath_t);
  cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                          const float *, int, const float *, int, const float *, float *, int);
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                            const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};

static CublasAPI api;
static int api_state;  // 0: not loaded, 1: loaded, -1: not available

static int load_api(void) {
  if (api_state) return api_state;
#ifdef RJ_CUBLAS_DL
  const char *names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"};
  void *h = 0;
  for (int i = 0; i < 4 && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
  if (!h) return api_state = -1;
  api.create = (decltype(api.create))dlsym(h, "cublasCreate_v2");
  api.destroy = (decltype(api.destroy))dlsym(h, "cublasDestroy_v2");
  api.set_math = (decltype(api.set_math))dlsym(h, "cublasSetMathMode");
  api.sgemm = (decltype(api.sgemm))dlsym(h, "cublasSgemm_v2");
  api.gemm_ex = (decltype(api.gemm_ex))dlsym(h, "cublasGemmEx");
  if (!api.create || !api.destroy || !api.set_math || !api.sgemm || !api.gemm_ex) return api_state = -1;
#else
  api.create = cublasCreate_v2;
  api.destroy = cublasDestroy_v2;
  api.set_math = cublasSetMathMode;
  api.sgemm = cublasSgemm_v2;
  api.gemm_ex = cublasGemmEx;
#endif
  return api_state = 1;
}

// One cuBLAS handle per device ordinal, created by rj_open.
#define RJ_MAX_DEV 64
static cublasHandle_t handles[RJ_MAX_DEV];

// rj_cublas_open creates the handle of ordinal (the current device). In
// the dlopen build a missing libcublas is not an error here: GEMMs through
// cuBLAS then fail with RC_NOCUBLAS, everything else works.
extern "C" int rj_cublas_open(int ordinal) {
  if (load_api() < 0 || handles[ordinal]) return 0;
  cublasStatus_t st = api.create(&handles[ordinal]);
  return st == CUBLAS_STATUS_SUCCESS ? 0 : RC_CUBLAS + (int)st;
}

extern "C" int rj_cublas_close(int ordinal) {
  if (!handles[ordinal]) return 0;
  cublasStatus_t st = api.destroy(handles[ordinal]);
  handles[ordinal] = 0;
  return st == CUBLAS_STATUS_SUCCESS ? 0 : RC_CUBLAS + (int)st;
}

// Row-major C (M,N) = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap
// the operands and the sizes.
extern "C" int rj_gemm_cublas(int ordinal, int mode, int transA, int transB, int M, int N, int K, float alpha, dptr a,
                              int lda, dptr b, int ldb, float beta, dptr c, int ldc) {
  if (ordinal < 0 || ordinal >= RJ_MAX_DEV) return RC_BADARG;
  if (load_api() < 0) return RC_NOCUBLAS;
  cublasHandle_t h = handles[ordinal];
  if (!h) return RC_CUBLAS + CUBLAS_STATUS_NOT_INITIALIZED;
  if (M <= 0 || N <= 0 || K <= 0) return RC_BADARG;
  cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t st;
  switch (mode) {
    case 0:
    case 1:
      st = api.set_math(h, mode == 1 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
      if (st != CUBLAS_STATUS_SUCCESS) return RC_CUBLAS + (int)st;
      st = api.sgemm(h, opB, opA, N, M, K, &alpha, (const float *)b, ldb, (const float *)a, lda, &beta, (float *)c, ldc);
      break;
    case 2:
      st = api.set_math(h, CUBLAS_DEFAULT_MATH);
      if (st != CUBLAS_STATUS_SUCCESS) return RC_CUBLAS + (int)st;
      st = api.gemm_ex(h, opB, opA, N, M, K, &alpha, (const void *)b, CUDA_R_16BF, ldb, (const void *)a, CUDA_R_16BF,
                       lda, &beta, (void *)c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      break;
    default:
      return RC_BADARG;
  }
  if (st != CUBLAS_STATUS_SUCCESS) return RC_CUBLAS + (int)st;
  return launch_rc();
}
