// SwiGLU and the residual add (mirrors kernels/ops.go), element-wise.
#include "common.cuh"

__global__ void swiglu_fwd_k(float *out, const float *gate, const float *up, long long N) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  float g = gate[i];
  out[i] = __fmul_rn(__fmul_rn(g, gosigmoid(g)), up[i]);
}

__global__ void swiglu_bwd_k(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long long N) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  float g = gate[i], d = dout[i];
  float s = gosigmoid(g);
  float t = __fadd_rn(1.0f, __fmul_rn(g, __fsub_rn(1.0f, s)));
  dgate[i] = __fadd_rn(dgate[i], __fmul_rn(__fmul_rn(__fmul_rn(d, up[i]), s), t));
  dup[i] = __fadd_rn(dup[i], __fmul_rn(__fmul_rn(d, g), s));
}

__global__ void residual_fwd_k(float *out, const float *a, const float *b, long long N) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) out[i] = __fadd_rn(a[i], b[i]);
}

__global__ void residual_bwd_k(float *da, float *db, const float *dout, long long N) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  float d = dout[i];
  if (da) da[i] = __fadd_rn(da[i], d);
  if (db) db[i] = __fadd_rn(db[i], d);
}

// scale_add_k: out = out + s·x (add) or s·x, the product rounded before
// the add, never fused (LoRA's scale: trainer's loraAdd and loraBackward).
__global__ void scale_add_k(float *out, const float *x, float s, long long N, int add) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  float p = __fmul_rn(s, x[i]);
  out[i] = add ? __fadd_rn(out[i], p) : p;
}

extern "C" int rj_scale_add(dptr out, dptr x, float s, long long N, int add) {
  if (N <= 0) return 0;
  scale_add_k<<<blocks_for(N, 256), 256>>>((float *)out, (const float *)x, s, N, add);
  return launch_rc();
}

extern "C" int rj_swiglu_fwd(dptr out, dptr gate, dptr up, long long N) {
  if (N <= 0) return 0;
  swiglu_fwd_k<<<blocks_for(N, 256), 256>>>((float *)out, (const float *)gate, (const float *)up, N);
  return launch_rc();
}

extern "C" int rj_swiglu_bwd(dptr dgate, dptr dup, dptr dout, dptr gate, dptr up, long long N) {
  if (N <= 0) return 0;
  swiglu_bwd_k<<<blocks_for(N, 256), 256>>>((float *)dgate, (float *)dup, (const float *)dout, (const float *)gate,
                                            (const float *)up, N);
  return launch_rc();
}

extern "C" int rj_residual_fwd(dptr out, dptr a, dptr b, long long N) {
  if (N <= 0) return 0;
  residual_fwd_k<<<blocks_for(N, 256), 256>>>((float *)out, (const float *)a, (const float *)b, N);
  return launch_rc();
}

extern "C" int rj_residual_bwd(dptr da, dptr db, dptr dout, long long N) {
  if (N <= 0) return 0;
  residual_bwd_k<<<blocks_for(N, 256), 256>>>((float *)da, (float *)db, (const float *)dout, N);
  return launch_rc();
}
