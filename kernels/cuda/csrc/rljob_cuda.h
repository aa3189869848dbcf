/* C interface of rljob's CUDA kernels (kernels/cuda/csrc, built into
   librljobcuda.a by `make build-cuda`). Device pointers travel as dptr
   (an integer: Go keeps them as uint64, never as Go pointers). Every
   function returns 0, a cudaError_t, RC_BADARG, or RC_CUBLAS + a
   cublasStatus_t. Argument order follows kernels/api.go: outputs, inputs,
   sizes, hyper-parameters. All launches go to the legacy default stream. */
#ifndef RLJOB_CUDA_H
#define RLJOB_CUDA_H
#ifdef __cplusplus
extern "C" {
#endif
typedef unsigned long long dptr;
#define RC_CUBLAS 20000
#define RC_NOCUBLAS 10002

/* device and memory (common.cu) */
int rj_device_count(int *n);
int rj_open(int ordinal, char *name, int namelen, unsigned long long *total);
int rj_close(int ordinal);
int rj_malloc(dptr *p, unsigned long long bytes);
int rj_free(dptr p);
int rj_mem_info(unsigned long long *free_b, unsigned long long *total_b);
int rj_upload(dptr dst, const void *src, unsigned long long bytes);
int rj_download(void *dst, dptr src, unsigned long long bytes);
int rj_memset0(dptr dst, unsigned long long bytes);
int rj_copy_d2d(dptr dst, dptr src, unsigned long long bytes);
int rj_sync(void);
int rj_cublas_open(int ordinal); /* gemm_cublas.cu (static or dlopen build) */
int rj_cublas_close(int ordinal);
int rj_take_dev_err(int *code, int *kernel, long long *index, long long *value, long long *limit);
const char *rj_error_string(int rc);

/* embedding.cu */
int rj_embedding_fwd(dptr out, dptr wte, dptr tokens, int N, int C, int V);
int rj_embedding_bwd(dptr dwte, dptr dout, dptr tokens, int N, int C, int V);
/* rmsnorm.cu */
int rj_rmsnorm_fwd(dptr out, dptr rstd, dptr inp, dptr weight, int N, int C, float eps);
int rj_rmsnorm_bwd(dptr dinp, dptr dweight, dptr dout, dptr inp, dptr weight, dptr rstd, int N, int C);
/* rope.cu: tab (maxPos, HS/2, 2) = cos, sin of pos·inv_freq[i] from the host */
int rj_rope_fwd(dptr out, dptr inp, dptr pos, dptr tab, int maxPos, int N, int NH, int HS);
int rj_rope_bwd(dptr dinp, dptr dout, dptr pos, dptr tab, int maxPos, int N, int NH, int HS);
/* swiglu.cu (and the residual) */
int rj_swiglu_fwd(dptr out, dptr gate, dptr up, long long N);
int rj_swiglu_bwd(dptr dgate, dptr dup, dptr dout, dptr gate, dptr up, long long N);
int rj_residual_fwd(dptr out, dptr a, dptr b, long long N);
int rj_scale_add(dptr out, dptr x, float s, long long N, int add);
int rj_residual_bwd(dptr da, dptr db, dptr dout, long long N);
/* gemm_bi.cu: the batch-invariant GEMM, strided and batched.
   C[z][m,n] = (acc ? C : bias[n] or +0) + Σ_k A[z][m,k]·B[z][k,n], one fmaf
   per k in order; z = z1·Z2 + z2, A at a + z1·sa1 + z2·sa2, B at
   b + z1·sb1 + (z2/bdiv)·sb2, C at c + z1·sc1 + z2·sc2. */
typedef struct {
  int M, N, K, Z1, Z2, bdiv, acc;
  long long sam, sak, sbk, sbn, scm;
  long long sa1, sa2, sb1, sb2, sc1, sc2;
  dptr a, b, c, bias;
} rj_gemm_args;
int rj_gemm_bi(const rj_gemm_args *g);
/* the kernel rj_gemm_bi launches: 64 (64×64 tiles, the default) or 128
   (128×128 tiles); the bits are the same */
int rj_set_gemm_tile(int tile);
int rj_bias_bwd(dptr dbias, dptr dout, int B, int OC);
/* gemm_bf16.cu: kernels.MatmulForwardBF16's order (w: BF16 (N, K)) */
int rj_gemm_bf16_bi(dptr out, dptr inp, dptr w, dptr bias, int M, int N, int K);
/* the same with inp (M, K) at inp[m·ldm + k·ldk] and, with acc, each out
   element's chain starting from its own value (MatmulBackwardBF16) */
int rj_gemm_bf16_bi_ex(dptr out, dptr inp, dptr w, dptr bias, int M, int N, int K, long long ldm, long long ldk,
                       int acc);
/* gemm_cublas.cu: mode 0 FP32, 1 TF32, 2 BF16 inputs (FP32 accumulate and
   output). Row-major C (M,N) = alpha·op(A)·op(B) + beta·C. */
int rj_gemm_cublas(int ordinal, int mode, int transA, int transB, int M, int N, int K, float alpha,
                   dptr a, int lda, dptr b, int ldb, float beta, dptr c, int ldc);
/* bf16.cu */
int rj_to_bf16(dptr dst, dptr src, long long n);
int rj_to_bf16_t(dptr dst, dptr src, int rows, int cols);
int rj_round_bf16(dptr x, long long n);
/* attention.cu: the batch-invariant forward and the GEMM-path backward */
int rj_attn_fwd(dptr out, dptr lse, dptr q, dptr k, dptr v, dptr valid, dptr S, int B, int T, int NH, int NKV, int HS);
int rj_attn_bwd(dptr dq, dptr dk, dptr dv, dptr dout, dptr q, dptr k, dptr v, dptr out, dptr lse, dptr valid,
                dptr P, dptr dP, dptr D, int B, int T, int NH, int NKV, int HS);
int rj_attn_decode(dptr out, dptr q, dptr kc, dptr vc, dptr lens, dptr S, int B, int Tmax, int NH, int NKV, int HS);
/* the decode over caches in place: tab (3·B u64) = key base addresses,
   value base addresses, lengths; position u, kv head kh at base + u·ld + kh·HS */
int rj_attn_decode_rows(dptr out, dptr q, dptr tab, dptr S, int B, int Tmax, long long ld, int NH, int NKV, int HS);
/* kvcache.cu: tab (3·rows u64) = destination address, source offset
   (floats), count (floats) per row */
int rj_scatter_rows(dptr src, dptr tab, int rows);
/* head.cu */
int rj_head_fwd(dptr e, dptr r, dptr lse, dptr logp, dptr ent, dptr logits, dptr targets, int N, int V, int VL, float temp);
int rj_head_bwd_logp(dptr e, dptr r, dptr dlogp, dptr dent, dptr logits, dptr lse, dptr ent, dptr targets, int N, int V,
                     int VL, float temp);
int rj_head_bwd_ce(dptr e, dptr r, float dloss, dptr targets, int count, int N, int V);
/* optim.cu */
int rj_adamw_step(dptr p, dptr m, dptr v, dptr g, long long n, float sc, float b1, float b2, float eps, float stepSize,
                  float invBc2, float decay, int zero);
int rj_grad_norm(double *out, dptr g, long long n, dptr partial);
/* sample.cu */
int rj_sample_ws_bytes(int N, int V, unsigned long long *bytes);
int rj_sample(dptr tok, dptr logp, dptr logits, int ld, int N, int V, float temp, float inv, int topK, double topP,
              dptr u, dptr ws, unsigned long long wsBytes);
#ifdef __cplusplus
}
#endif
#endif
