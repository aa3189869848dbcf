//go:build cuda && cgo

package cuda

/*
#include "rljob_cuda.h"
*/
import "C"

import "fmt"

// MatmulForward is kernels.MatmulForward through the batch-invariant GEMM:
// out (B, OC) = inp (B, C) · weightᵀ + bias (bias may be nil); every
// element is bias (or +0) then one fmaf per c in order, so it has the CPU
// kernels' bits.
func (d *Device) MatmulForward(out, inp, weight, bias *Buf, B, C, OC int) error {
	const k = "matmul_forward"
	if err := check(k, f32("out", out, B*OC), f32("inp", inp, B*C), f32("weight", weight, OC*C), opt32("bias", bias, OC)); err != nil {
		return err
	}
	g := gemmArgs(B, OC, C)
	g.a, g.sam, g.sak = inp.p(), C.longlong(C), 1
	g.b, g.sbk, g.sbn = weight.p(), 1, C.longlong(C)
	g.c, g.scm, g.bias = out.p(), C.longlong(OC), bias.p()
	return cerr(k, C.rj_gemm_bi(&g))
}

// MatmulForwardBF16 is kernels.MatmulForwardBF16: out (B, OC) =
// bf16(inp) (B, C) · wᵀ + bias for w (OC, C) a BF16 Buf rounded by ToBF16,
// accumulated in VDPBF16PS's pair order with its flushes, so the bits are
// the CPU's (bias may be nil).
func (d *Device) MatmulForwardBF16(out, inp, w, bias *Buf, B, C, OC int) error {
	const k = "matmul_forward_bf16"
	if err := check(k, f32("out", out, B*OC), f32("inp", inp, B*C), arg{name: "w", b: w, dt: BF16, n: OC * C},
		opt32("bias", bias, OC)); err != nil {
		return err
	}
	return cerr(k, C.rj_gemm_bf16_bi(out.p(), inp.p(), w.p(), bias.p(), C.int(B), C.int(OC), C.int(C)))
}

// MatmulBackward is kernels.MatmulBackward: dinp += dout·weight (o in
// order), dweight += doutᵀ·inp (b in order), dbias += Σ_b dout; each of
// dinp, dweight, dbias may be nil.
func (d *Device) MatmulBackward(dinp, dweight, dbias, dout, inp, weight *Buf, B, C, OC int) error {
	const k = "matmul_backward"
	if err := check(k, opt32("dinp", dinp, B*C), opt32("dweight", dweight, OC*C), opt32("dbias", dbias, OC),
		f32("dout", dout, B*OC), f32("inp", inp, B*C), f32("weight", weight, OC*C)); err != nil {
		return err
	}
	if dbias != nil {
		if err := cerr(k+" (dbias)", C.rj_bias_bwd(dbias.p(), dout.p(), C.int(B), C.int(OC))); err != nil {
			return err
		}
	}
	if dinp != nil {
		g := gemmArgs(B, C, OC)
		g.a, g.sam, g.sak = dout.p(), C.longlong(OC), 1
		g.b, g.sbk, g.sbn = weight.p(), C.longlong(C), 1
		g.c, g.scm, g.acc = dinp.p(), C.longlong(C), 1
		if err := cerr(k+" (dinp)", C.rj_gemm_bi(&g)); err != nil {
			return err
		}
	}
	if dweight != nil {
		g := gemmArgs(OC, C, B)
		g.a, g.sam, g.sak = dout.p(), 1, C.longlong(OC)
		g.b, g.sbk, g.sbn = inp.p(), C.longlong(C), 1
		g.c, g.scm, g.acc = dweight.p(), C.longlong(C), 1
		if err := cerr(k+" (dweight)", C.rj_gemm_bi(&g)); err != nil {
			return err
		}
	}
	return nil
}

// GemmBI is package kernels' gemm on the device: c = op(a)·op(b), or
// c += op(a)·op(b) when acc, every element one fmaf chain over k in order.
// op(a) is (M, K): a (M, K) with rows lda apart, or aᵀ for a (K, M) when
// transA; op(b) is (K, N): b (K, N) with rows ldb apart, or bᵀ for b (N, K)
// when transB; c (M, N) has rows ldc apart.
func (d *Device) GemmBI(transA, transB bool, M, N, K int, a *Buf, lda int, b *Buf, ldb int, acc bool, c *Buf, ldc int) error {
	const k = "gemm_bi"
	if M <= 0 || N <= 0 || K < 0 {
		return fmt.Errorf("cuda: %s: M=%d N=%d K=%d", k, M, N, K)
	}
	na, nb := (M-1)*lda+K, (K-1)*ldb+N
	if transA {
		na = (K-1)*lda + M
	}
	if transB {
		nb = (N-1)*ldb + K
	}
	if err := check(k, f32("a", a, na), f32("b", b, nb), f32("c", c, (M-1)*ldc+N)); err != nil {
		return err
	}
	g := gemmArgs(M, N, K)
	g.a, g.sam, g.sak = a.p(), C.longlong(lda), 1
	if transA {
		g.sam, g.sak = 1, C.longlong(lda)
	}
	g.b, g.sbk, g.sbn = b.p(), C.longlong(ldb), 1
	if transB {
		g.sbk, g.sbn = 1, C.longlong(ldb)
	}
	g.c, g.scm = c.p(), C.longlong(ldc)
	if acc {
		g.acc = 1
	}
	return cerr(k, C.rj_gemm_bi(&g))
}

func gemmArgs(M, N, K int) C.rj_gemm_args {
	return C.rj_gemm_args{M: C.int(M), N: C.int(N), K: C.int(K), Z1: 1, Z2: 1, bdiv: 1}
}

// GemmMode selects the cuBLAS path of GemmCublas.
type GemmMode int

// cuBLAS modes.
const (
	GemmFP32 GemmMode = iota // FP32 FMA units, no tensor cores
	GemmTF32                 // TF32 tensor cores, FP32 accumulation
	GemmBF16                 // BF16 inputs (a and b are BF16 Bufs), FP32 accumulation and output
)

func (m GemmMode) String() string { return [...]string{"fp32", "tf32", "bf16"}[m] }

// GemmCublas is the fast, not batch-invariant path: row-major
// c (M, N) = alpha·op(a)·op(b) + beta·c through cuBLAS, with GemmBI's
// shapes and leading dimensions. For GemmBF16, a and b hold bfloat16 (ToBF16).
func (d *Device) GemmCublas(mode GemmMode, transA, transB bool, M, N, K int, alpha float32, a *Buf, lda int, b *Buf, ldb int, beta float32, c *Buf, ldc int) error {
	k := "gemm_cublas_" + mode.String()
	in := F32
	if mode == GemmBF16 {
		in = BF16
	}
	if M <= 0 || N <= 0 || K <= 0 {
		return fmt.Errorf("cuda: %s: M=%d N=%d K=%d must be > 0", k, M, N, K)
	}
	na, nb := (M-1)*lda+K, (K-1)*ldb+N
	if transA {
		na = (K-1)*lda + M
	}
	if transB {
		nb = (N-1)*ldb + K
	}
	if err := check(k, arg{name: "a", b: a, dt: in, n: na}, arg{name: "b", b: b, dt: in, n: nb}, f32("c", c, (M-1)*ldc+N)); err != nil {
		return err
	}
	return cerr(k, C.rj_gemm_cublas(C.int(d.Ordinal), C.int(mode), cbool(transA), cbool(transB), C.int(M), C.int(N), C.int(K),
		C.float(alpha), a.p(), C.int(lda), b.p(), C.int(ldb), C.float(beta), c.p(), C.int(ldc)))
}

// ToBF16 rounds n floats of src into dst (BF16) as kernels.BF16 does.
func (d *Device) ToBF16(dst, src *Buf, n int) error {
	const k = "to_bf16"
	if err := check(k, arg{name: "dst", b: dst, dt: BF16, n: n}, f32("src", src, n)); err != nil {
		return err
	}
	return cerr(k, C.rj_to_bf16(dst.p(), src.p(), C.longlong(n)))
}

// ToBF16T rounds src (rows, cols) into dst (cols, rows, BF16) transposed:
// dst[c·rows + r] = kernels.BF16(src[r·cols + c]) (the bf16 backward's
// weightᵀ and inpᵀ, without a trip through the host).
func (d *Device) ToBF16T(dst, src *Buf, rows, cols int) error {
	const k = "to_bf16_t"
	if err := check(k, arg{name: "dst", b: dst, dt: BF16, n: rows * cols}, f32("src", src, rows*cols)); err != nil {
		return err
	}
	return cerr(k, C.rj_to_bf16_t(dst.p(), src.p(), C.int(rows), C.int(cols)))
}

// RoundBF16 rounds n floats of x to bf16 in place, kept as float32
// (kernels.BF16Float(kernels.BF16(x))).
func (d *Device) RoundBF16(x *Buf, n int) error {
	const k = "round_bf16"
	if err := check(k, f32("x", x, n)); err != nil {
		return err
	}
	return cerr(k, C.rj_round_bf16(x.p(), C.longlong(n)))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// MatmulBF16Strided is the bf16 GEMM with a strided input and an optional
// accumulate, kernels' matmulBF16 (what MatmulBackwardBF16 runs): out
// (M, N) = [out or bias or +0] + bf16(inp) · wᵀ for w (N, K) a BF16 Buf,
// inp's element (m, k) at inp[m·ldm + k·ldk]; with acc each out element's
// chain starts from its own value (bias must then be nil).
func (d *Device) MatmulBF16Strided(out, inp, w, bias *Buf, M, N, K, ldm, ldk int, acc bool) error {
	const k = "matmul_bf16_strided"
	if M <= 0 || N <= 0 || K <= 0 || ldm < 0 || ldk < 0 || (acc && bias != nil) {
		return fmt.Errorf("cuda: %s: M=%d N=%d K=%d must be > 0, ldm=%d ldk=%d ≥ 0, no bias with acc", k, M, N, K, ldm, ldk)
	}
	if err := check(k, f32("out", out, M*N), f32("inp", inp, (M-1)*ldm+(K-1)*ldk+1), arg{name: "w", b: w, dt: BF16, n: N * K},
		opt32("bias", bias, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_gemm_bf16_bi_ex(out.p(), inp.p(), w.p(), bias.p(), C.int(M), C.int(N), C.int(K),
		C.longlong(ldm), C.longlong(ldk), cbool(acc)))
}

// BiasBackward is kernels' bias gradient: dbias (OC) += Σ_b dout[b, :],
// b in order (what MatmulBackward and MatmulBackwardBF16 do for dbias).
func (d *Device) BiasBackward(dbias, dout *Buf, B, OC int) error {
	const k = "bias_backward"
	if err := check(k, f32("dbias", dbias, OC), f32("dout", dout, B*OC)); err != nil {
		return err
	}
	return cerr(k, C.rj_bias_bwd(dbias.p(), dout.p(), C.int(B), C.int(OC)))
}
