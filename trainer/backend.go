package trainer

import "github.com/rljob/rljob/kernels"

// Backend is the compute the model's forward, backward and loss head
// (model.go, bf16.go, lora.go) reach: one method per kernel, named and
// shaped as kernels' functions and kernels/cuda's Device methods, outputs
// first. The orchestration (which layer, which buffer, which chunk) stays
// in Model, once; a backend only computes.
//
// This is the first step of issue 18's "one model code path over a
// backend interface": the tensors are still host []float32 (and the CPU
// kernels' packed weight types), so the only implementation is cpuBackend
// and results are bit-identical to calling kernels directly. What remains
// for a device-resident CUDA backend (opaque buffers the backend
// allocates, uploads and downloads) is listed in docs/cuda.md, "Planned:
// the trainer backend".
//
// A method must not fail on valid shapes; shapes are the model's to get
// right (kernels panics on a mismatch, as before).
type Backend interface {
	// Name is "cpu" (later "cuda: <card>").
	Name() string

	// Zero sets x to 0 (accumulating outputs are cleared with it).
	Zero(x []float32)
	// RoundBF16 rounds x to bf16 in place (the bf16 embedding's rows).
	RoundBF16(x []float32)

	EmbeddingForward(out, wte []float32, tokens []int32, N, C int)
	EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int)
	RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32)
	RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int)
	RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32)
	RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32)
	AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int)
	AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int)
	SwiGLUForward(out, gate, up []float32, N int)
	SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int)
	ResidualForward(out, a, b []float32, N int)

	// MatmulForward is the batch-invariant fp32 linear layer:
	// out (N, OC) = inp (N, C)·weightᵀ + bias.
	MatmulForward(out, inp, weight, bias []float32, N, C, OC int)
	// MatmulBackward accumulates dinp, dweight and dbias (each may be nil).
	MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int)
	// PackWeight packs weight (N, K) for MatmulForwardPacked, reusing pw.
	PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight
	// MatmulForwardPacked is MatmulForward on a packed weight (the same bits).
	MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int)

	// bf16: weights packed as bf16, inputs rounded, float32 accumulation.
	PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16
	PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) *kernels.PackedWeightBF16
	MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int)
	MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int)
	MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int)

	// The loss head, per chunk of rows (kernels.HeadForward's contract).
	HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32)
	HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32)
	HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int)
}

// cpuBackend is the Backend of package kernels (the host's cores).
type cpuBackend struct{}

// cpu is the CPU backend every model uses today.
var cpu Backend = cpuBackend{}

func (cpuBackend) Name() string { return "cpu" }

func (cpuBackend) Zero(x []float32)      { parallelClear(x) }
func (cpuBackend) RoundBF16(x []float32) { roundBF16(x) }

func (cpuBackend) EmbeddingForward(out, wte []float32, tokens []int32, N, C int) {
	kernels.EmbeddingForward(out, wte, tokens, N, C)
}

func (cpuBackend) EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	kernels.EmbeddingBackward(dwte, dout, tokens, N, C)
}

func (cpuBackend) RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	kernels.RMSNormForward(out, rstd, inp, weight, N, C, eps)
}

func (cpuBackend) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	kernels.RMSNormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
}

func (cpuBackend) RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	kernels.RopeForward(out, inp, pos, N, NH, HS, theta)
}

func (cpuBackend) RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	kernels.RopeBackward(dinp, dout, pos, N, NH, HS, theta)
}

func (cpuBackend) AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	kernels.AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
}

func (cpuBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	kernels.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

func (cpuBackend) SwiGLUForward(out, gate, up []float32, N int) {
	kernels.SwiGLUForward(out, gate, up, N)
}

func (cpuBackend) SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int) {
	kernels.SwiGLUBackward(dgate, dup, dout, gate, up, N)
}

func (cpuBackend) ResidualForward(out, a, b []float32, N int) {
	kernels.ResidualForward(out, a, b, N)
}

func (cpuBackend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	kernels.MatmulForwardInvariant(out, inp, weight, bias, N, C, OC)
}

func (cpuBackend) MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	kernels.MatmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}

func (cpuBackend) PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight {
	return kernels.PackWeight(pw, weight, N, K)
}

func (cpuBackend) MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int) {
	kernels.MatmulForwardBI(out, inp, pw, bias, N)
}

func (cpuBackend) PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16 {
	return kernels.PackWeightBF16(pw, weight, N, K)
}

func (cpuBackend) PackWeightBF16T(pw *kernels.PackedWeightBF16, weight []float32, K, N int) *kernels.PackedWeightBF16 {
	return kernels.PackWeightBF16T(pw, weight, K, N)
}

func (cpuBackend) MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int) {
	kernels.MatmulForwardBF16(out, inp, pw, bias, N)
}

func (cpuBackend) MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	kernels.MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}

func (cpuBackend) MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	kernels.MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight, wT, N, C, OC)
}

func (cpuBackend) HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	kernels.HeadForward(e, r, lse, logp, ent, logits, targets, N, V, VL, temp)
}

func (cpuBackend) HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	kernels.HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent, targets, N, V, VL, temp)
}

func (cpuBackend) HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int) {
	kernels.HeadBackwardCE(e, r, dloss, targets, count, N, V)
}
