// Package kernels holds the CPU compute kernels of rljob's trainer: flat
// []float32 functions with explicit shapes, in the style of llm.c.
//
// Conventions (every function in this file follows them):
//
//   - Argument order is llm.c's: outputs, then inputs, then sizes, then
//     hyper-parameters. Backward functions take the d-grads first, then dout,
//     then what the forward saved or needs.
//   - Shapes are row-major and written as (B,T,C); N is a number of rows
//     (usually B*T).
//   - Forward outputs are WRITTEN (=). Backward gradients are ACCUMULATED (+=)
//     into the d-buffers, so the caller zeroes them once per step (as llm.c
//     does). A nil d-buffer is skipped where the doc comment says so.
//   - Token ids are int32 (the lake stores list<int32>). A negative target id
//     means "ignore this row" in the loss and log-prob functions.
//   - Every pure-Go kernel is deterministic: each output element is
//     computed by exactly one goroutine in a fixed order, and reductions use
//     a fixed chunking followed by a fixed-order sum, so the bytes do not
//     depend on GOMAXPROCS or on scheduling (TestDeterministicAcrossThreads).
//     Every kernel set (kernelset.go: avx512, avx2, go) gives the same
//     bits too, so the bytes do not depend on the machine either.
//   - Each fast kernel has a naive twin (naive.go) that is its specification;
//     the tests compare the two and check every backward against central
//     finite differences in float64.
//
// The functions in this file are the whole exported API; the implementations
// live in the files named after each op family.
package kernels

// ---------------------------------------------------------------------------
// Matmul (gemm.go, bigemm.go)

// MatmulForward computes out = inp · weightᵀ + bias.
//
//	out    (B, OC)  written
//	inp    (B, C)
//	weight (OC, C)  PyTorch/HF nn.Linear layout
//	bias   (OC)     or nil
//
// It is MatmulForwardInvariant: every out[b,o] is bias[o] (or +0) followed
// by one float32 FMA per c, c in order (gemm.go), the same bits on every
// kernel set.
func MatmulForward(out, inp, weight, bias []float32, B, C, OC int) {
	matmulForward(out, inp, weight, bias, B, C, OC)
}

// MatmulBackward accumulates the gradients of MatmulForward.
//
//	dinp    (B, C)   += dout · weight        (nil: skipped)
//	dweight (OC, C)  += doutᵀ · inp          (nil: skipped)
//	dbias   (OC)     += Σ_b dout[b,:]         (nil: skipped)
//
// Each element of dinp continues its own value with one FMA per o (o in
// order), each of dweight one per b (b in order), through the kernel of
// MatmulForwardBI (gemm.go): the same bits on every kernel set.
//
//	dout    (B, OC)
//	inp     (B, C)
//	weight  (OC, C)
func MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	matmulBackward(dinp, dweight, dbias, dout, inp, weight, B, C, OC)
}

// MatmulForwardBI computes out (M, N) = inp (M, K) · wᵀ + bias for a
// packed weight w (PackWeight) and bias (N) or nil, batch-invariantly:
// every out[m,n] is bias[n] (or +0) followed by float32 fused
// multiply-adds of inp[m,k]·w[n,k] for k = 0..K-1 in order, the same bits
// whatever M, the row's place, the other rows, GOMAXPROCS or the
// instruction set (AVX-512, AVX2+FMA or Go; bigemm.go). Every
// log-probability (sampler prefill and decode, the trainer's forward) is
// computed with it.
func MatmulForwardBI(out, inp []float32, w *PackedWeight, bias []float32, M int) {
	matmulForwardBI(out, inp, w, bias, M)
}

// MatmulForwardInvariant is MatmulForwardBI on an unpacked weight (OC, C)
// (MatmulForward's shapes): it packs weight into a scratch buffer first,
// GemmPackFloats at a time, which costs O(OC·C) against the product's
// O(B·OC·C).
func MatmulForwardInvariant(out, inp, weight, bias []float32, B, C, OC int) {
	matmulForward(out, inp, weight, bias, B, C, OC)
}

// MatmulForwardBF16W is MatmulForwardBF16 on an unpacked weight (OC, C)
// (MatmulForward's shapes), rounded and packed into a scratch buffer first.
func MatmulForwardBF16W(out, inp, weight, bias []float32, B, C, OC int) {
	matmulForwardBF16W(out, inp, weight, bias, B, C, OC)
}

// MatmulBackwardBF16 accumulates the gradients of a bf16 linear layer
// (MatmulForwardBF16), with MatmulBackward's shapes and nil rules: both
// products round their operands to bf16 and run the bf16 GEMM in its
// order (bf16.go), each gradient element's chain starting from its own
// value (read as the instruction reads an accumulator: a subnormal is 0):
//
//	dinp    += bf16(dout) · bf16(weight)      (the pairs run over o)
//	dweight += bf16(dout)ᵀ · bf16(inp)        (the pairs run over b)
//	dbias   += Σ_b dout[b,:]                  (float32, b in order)
//
// The same bits on every kernel set, thread count and B.
func MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, nil, B, C, OC)
}

// MatmulBackwardBF16Packed is MatmulBackwardBF16 with the weight also
// given packed by PackWeightBF16T(wT, weight, OC, C), for a caller that
// reuses it (the LM head's backward, chunk by chunk).
func MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight []float32, wT *PackedWeightBF16, B, C, OC int) {
	matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, wT, B, C, OC)
}

// ---------------------------------------------------------------------------
// Embedding (ops.go)

// EmbeddingForward gathers rows of the embedding table.
//
//	out    (N, C)  written: out[n,:] = wte[tokens[n],:]
//	wte    (V, C)
//	tokens (N)     each in [0, V); panics otherwise
func EmbeddingForward(out, wte []float32, tokens []int32, N, C int) {
	embeddingForward(out, wte, tokens, N, C)
}

// EmbeddingBackward scatters the gradient back to the table rows.
//
//	dwte   (V, C)  += : dwte[tokens[n],:] += dout[n,:] (rows summed in order n = 0..N-1)
//	dout   (N, C)
//	tokens (N)
func EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	embeddingBackward(dwte, dout, tokens, N, C)
}

// ---------------------------------------------------------------------------
// RMSNorm (ops.go)

// RMSNormForward is HF Llama/Qwen2 RMSNorm:
//
//	rstd[n]  = 1 / sqrt(mean_c(inp[n,c]²) + eps)    (N)    written (saved for backward)
//	out[n,c] = inp[n,c] * rstd[n] * weight[c]        (N, C) written
//	weight (C)
func RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	rmsnormForward(out, rstd, inp, weight, N, C, eps)
}

// RMSNormBackward accumulates the gradients of RMSNormForward. With
// xhat = inp*rstd and g = dout*weight:
//
//	dinp[n,c]  += rstd[n] * (g[n,c] - xhat[n,c] * mean_c'(g[n,c']*xhat[n,c']))   (N, C)
//	dweight[c] += Σ_n dout[n,c] * xhat[n,c]                                     (C)  (nil: skipped)
//	dout (N, C), inp (N, C), weight (C), rstd (N) from the forward.
func RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
}

// ---------------------------------------------------------------------------
// Rotary position embedding (ops.go)

// RopeForward applies rotary position embedding in the HF Llama
// "rotate_half" convention (the two halves of each head are the pair, NOT
// interleaved even/odd elements):
//
//	inv_freq[i] = 1 / theta^(2i/HS)          i in [0, HS/2), float32 as in HF
//	a           = pos[n] * inv_freq[i]        (float32 product, as HF)
//	x1 = inp[n,h,i], x2 = inp[n,h,i+HS/2]
//	out[n,h,i]      = x1*cos(a) - x2*sin(a)
//	out[n,h,i+HS/2] = x2*cos(a) + x1*sin(a)
//
//	out (N, NH, HS) written; may alias inp (in place is fine)
//	inp (N, NH, HS), pos (N) absolute position of each token, HS even.
func RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	ropeForward(out, inp, pos, N, NH, HS, theta)
}

// RopeBackward accumulates dinp += Rᵀ·dout for RopeForward's rotation R:
//
//	dinp[n,h,i]      += d1*cos(a) + d2*sin(a)
//	dinp[n,h,i+HS/2] += d2*cos(a) - d1*sin(a)
//
//	dinp, dout (N, NH, HS); dinp must not alias dout.
func RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	ropeBackward(dinp, dout, pos, N, NH, HS, theta)
}

// ---------------------------------------------------------------------------
// Causal self-attention with grouped-query heads (attention.go)

// AttentionForward is causal scaled-dot-product attention with GQA,
// computed batch-invariantly (attention_bi.go). Query head h uses key/value
// head h / (NH/NKV) (NH must be a multiple of NKV), scale = 1/sqrt(HS),
// softmax in float32 with max subtraction.
//
//	out   (B, T, NH, HS)  written; must not alias q, k or v
//	lse   (B, NH, T)      written: log Σ_s exp(score[t,s]) — the only thing
//	                      backward needs besides q, k, v, out (scores are
//	                      recomputed, so no (T,T) buffer is kept)
//	q     (B, T, NH, HS)  already rotated (RopeForward)
//	k, v  (B, T, NKV, HS)
//	valid (B, T) or nil (all valid): padding mask. Query t of sequence b
//	      attends keys s <= t with valid[b,s]. A padded query (valid[b,t]
//	      false) gets out = 0, lse = 0 and receives no gradient, and padded
//	      keys get none either, so padding (left or right) never affects
//	      the valid positions.
//
// The scores and the weighted sum of values are FMA chains in a fixed
// order (MatmulForwardBI's), so the row of a token has the bits
// AttentionDecodeBI gives it from a KV cache, whatever B, T beyond the
// token's position, or the thread count. It is the trainer's forward.
func AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	attentionForwardBI(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
}

// AttentionBackward accumulates the gradients of AttentionForward
// (flash-attention style: recomputes P = exp(score - lse)).
//
//	dq      (B, T, NH, HS)  +=
//	dk, dv  (B, T, NKV, HS) += (summed over the NH/NKV query heads of a group)
//	dout    (B, T, NH, HS)
//	q, k, v, out, lse, valid as given to / returned by AttentionForward.
func AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

// ---------------------------------------------------------------------------
// SwiGLU and residual (ops.go)

// SwiGLUForward computes out = silu(gate) * up, silu(x) = x*sigmoid(x).
//
//	out, gate, up (N) — N is the total number of elements (rows*I).
//	out written; may alias gate or up.
func SwiGLUForward(out, gate, up []float32, N int) {
	swigluForward(out, gate, up, N)
}

// SwiGLUBackward accumulates
//
//	dgate += dout * up * sig(gate) * (1 + gate*(1-sig(gate)))
//	dup   += dout * silu(gate)
//
//	all (N). dgate/dup must not alias gate/up.
func SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int) {
	swigluBackward(dgate, dup, dout, gate, up, N)
}

// ResidualForward computes out = a + b, all (N); out may alias a or b.
func ResidualForward(out, a, b []float32, N int) {
	residualForward(out, a, b, N)
}

// ResidualBackward accumulates da += dout and db += dout, all (N).
func ResidualBackward(da, db, dout []float32, N int) {
	residualBackward(da, db, dout, N)
}

// ---------------------------------------------------------------------------
// Log-probabilities, cross-entropy, entropy (loss.go)
//
// All of them work on z = logits / temp (temp > 0; pass 1 for plain logits),
// since RL recomputes the sampler's log-probabilities at the sampling
// temperature (verl, TRL). lse is the log-sum-exp of z per row.

// LogProbsForward gathers target log-probabilities:
//
//	logp[n] = z[n,targets[n]] - lse[n]       (N) written; 0 where targets[n] < 0
//	lse[n]  = log Σ_v exp(z[n,v])            (N) written (saved for backward)
//	logits (N, V), targets (N) in [0,V) or negative = ignored.
func LogProbsForward(logp, lse, logits []float32, targets []int32, N, V int, temp float32) {
	logprobsForward(logp, lse, logits, targets, N, V, temp)
}

// HeadForward is the trainer's fused loss head (head.go): one exp per
// logit for forward and backward together. For each row n of logits
// (N, V), z = logits·(1/temp), over the first VL ids only (ids ≥ VL, a
// vocabulary padded past the tokenizer, have probability 0):
//
//	lse[n]  = log Σ_{v<VL} exp(z[n,v])                                written
//	logp[n] = logits[n,t]/temp − lse[n]  (t = targets[n] ≥ 0; else 0)   written
//	ent[n]  = lse[n] − Σ_v p z           (only when ent != nil)        written
//	e[n,v]  = exp(z[n,v] − max z[n,:])   (N, V), 0 for v ≥ VL            written
//	r[n]    = 1 / Σ_v e[n,v]                                            written
//
// so that p[n,v] = e[n,v]·r[n]; HeadBackwardLogp and HeadBackwardCE turn e
// into dlogits in place. logp has the bits of LogProbRow.
func HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	headFwd(e, r, lse, logp, ent, nil, logits, targets, N, V, VL, temp)
}

// HeadForwardMax is HeadForward that also writes mx[n] = max_v z[n,v]
// (N), which HeadSliceLogp and HeadSliceCE take instead of e.
func HeadForwardMax(e, r, lse, logp, ent, mx, logits []float32, targets []int32, N, V, VL int, temp float32) {
	headFwd(e, r, lse, logp, ent, mx[:N], logits, targets, N, V, VL, temp)
}

// HeadSliceLogp is HeadBackwardLogp for one slice of the vocabulary: the
// ids v0..v0+W−1 of N rows whose logits (N, W) are given. It writes their
// dlogits into d (N, W) from HeadForwardMax's per-row mx, r, lse and ent,
// recomputing e, with the bits HeadBackwardLogp gives those ids. The
// loss head's backward then runs slice by slice, each slice's weight
// gradient a product over all N rows, instead of chunk of rows by chunk
// (docs/kernels.md).
func HeadSliceLogp(d, logits, mx, r, dlogp, dent, lse, ent []float32, targets []int32, N, W, v0, VL int, temp float32) {
	headSliceLogp(d, logits, mx, r, dlogp, dent, lse, ent, targets, N, W, v0, VL, temp)
}

// HeadSliceCE is HeadBackwardCE for one slice of the vocabulary, as
// HeadSliceLogp is HeadBackwardLogp's (temperature 1).
func HeadSliceCE(d, logits, mx, r []float32, dloss float32, targets []int32, count, N, W, v0, VL int) {
	headSliceCE(d, logits, mx, r, dloss, targets, count, N, W, v0, VL)
}

// HeadBackwardLogp overwrites e (N, V) from HeadForward with
//
//	dlogits[n,v] = dlogp[n]/temp·(1[v=t] − p) − dent[n]/temp·p·(log p + ent[n])
//
// (dent may be nil; rows with a negative target take no dlogp; ids ≥ VL
// get 0).
func HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	headBwdLogp(e, r, dlogp, dent, logits, lse, ent, targets, N, V, VL, temp)
}

// HeadBackwardCE overwrites e (N, V) from HeadForward (temperature 1) with
// the gradient of dloss·(mean cross-entropy over the count rows whose
// target is not negative): dlogits[n,v] = dloss/count·(p − 1[v=t]).
func HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int) {
	headBwdCE(e, r, dloss, targets, count, N, V)
}

// LogProbRow is HeadForward's logp for one row of logits (VL, the
// sampleable ids) and a target t ≥ 0, with the same operations in the same
// order: the sampler's logprob of a token has the bits the trainer's
// forward gives it.
func LogProbRow(row []float32, t int32, temp float32) float32 { return logProbRow(row, t, temp) }

// LogProbsBackward accumulates the gradient from dlogp:
//
//	dlogits[n,v] += dlogp[n]/temp * (1[v == targets[n]] - softmax(z[n])[v])
//
// Rows with a negative target are skipped. dlogits (N, V), dlogp (N).
func LogProbsBackward(dlogits, dlogp, logits, lse []float32, targets []int32, N, V int, temp float32) {
	logprobsBackward(dlogits, dlogp, logits, lse, targets, N, V, temp)
}

// CrossEntropyForward is the SFT loss (temperature 1), mean over the rows
// whose target is not negative:
//
//	losses[n] = lse[n] - logits[n,targets[n]]   (N) written; 0 where ignored
//	lse (N) written (saved for backward)
//	returns mean = Σ losses / count and count = #(targets >= 0); mean is 0
//	when count is 0.
func CrossEntropyForward(losses, lse, logits []float32, targets []int32, N, V int) (mean float32, count int) {
	return crossEntropyForward(losses, lse, logits, targets, N, V)
}

// CrossEntropyBackward accumulates the gradient of the mean loss scaled by
// dloss (1 for a plain loss):
//
//	dlogits[n,v] += dloss/count * (softmax(logits[n])[v] - 1[v == targets[n]])
//
// with count = #(targets >= 0); ignored rows get nothing. dlogits (N, V).
func CrossEntropyBackward(dlogits []float32, dloss float32, logits, lse []float32, targets []int32, N, V int) {
	crossEntropyBackward(dlogits, dloss, logits, lse, targets, N, V)
}

// EntropyForward computes the entropy of each row's next-token distribution
// p = softmax(logits/temp):
//
//	ent[n] = -Σ_v p[n,v] log p[n,v] = lse[n] - Σ_v p[n,v] z[n,v]   (N) written
//	lse[n] as in LogProbsForward                                 (N) written
func EntropyForward(ent, lse, logits []float32, N, V int, temp float32) {
	entropyForward(ent, lse, logits, N, V, temp)
}

// EntropyBackward accumulates the gradient from dent:
//
//	dlogits[n,v] += -dent[n]/temp * p[n,v] * (log p[n,v] + ent[n])
//
// dlogits (N, V); ent and lse from EntropyForward.
func EntropyBackward(dlogits, dent, logits, lse, ent []float32, N, V int, temp float32) {
	entropyBackward(dlogits, dent, logits, lse, ent, N, V, temp)
}

// Softmax writes probs[n,:] = softmax(logits[n,:]/temp) for N rows of V,
// float32 with max subtraction; temp > 0. probs may alias logits. For the
// sampler (temperature 0 = greedy is the caller's Argmax).
func Softmax(probs, logits []float32, N, V int, temp float32) {
	softmax(probs, logits, N, V, temp)
}

// LogSoftmax writes out[n,:] = logits[n,:]/temp - lse(logits[n,:]/temp).
// out may alias logits.
func LogSoftmax(out, logits []float32, N, V int, temp float32) {
	logSoftmax(out, logits, N, V, temp)
}

// Argmax returns the index of the largest value in row (the first one on
// ties), or -1 for an empty row.
func Argmax(row []float32) int { return argmax(row) }

// ---------------------------------------------------------------------------
// Optimizer and gradient norm (optim.go)

// AdamWConfig holds AdamW's hyper-parameters (Loshchilov & Hutter 2019,
// PyTorch's torch.optim.AdamW formulation).
type AdamWConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
}

// AdamWUpdate does one AdamW step t (1-based) in place, PyTorch formula:
//
//	m = β1 m + (1-β1) g
//	v = β2 v + (1-β2) g²
//	p = p - lr*wd*p                                (decoupled weight decay)
//	p = p - (lr/(1-β1^t)) * m / (sqrt(v)/sqrt(1-β2^t) + eps)
//
//	params, m, v (N) updated in place; grads (N). Call it per tensor to use
//	a different WeightDecay (e.g. 0 for norms and biases).
func AdamWUpdate(params, m, v, grads []float32, N int, cfg AdamWConfig, t int) {
	adamwUpdate(params, m, v, grads, N, cfg, t)
}

// AdamWStep is the trainer's update: Scale(grads, gradScale) then
// AdamWUpdate (step t) over len(params) elements, fused in one pass that
// leaves grads unchanged, or zeroes them when zeroGrads (sparing
// ZeroGrad's pass). It multiplies by 1/sqrt(1−β2ᵗ) where AdamWUpdate
// divides, so the parameters agree with Scale+AdamWUpdate to float32
// rounding (moments bit for bit).
func AdamWStep(params, m, v, grads []float32, gradScale float32, cfg AdamWConfig, t int, zeroGrads bool) {
	adamwStep(params, m, v, grads, gradScale, cfg, t, zeroGrads)
}

// GradNorm returns sqrt(Σ g²) accumulated in float64 over fixed chunks
// summed in a fixed order (independent of GOMAXPROCS).
func GradNorm(g []float32) float64 { return gradNorm(g) }

// Scale multiplies x (N) by s in place (gradient clipping).
func Scale(x []float32, s float32) { scale(x, s) }

// ---------------------------------------------------------------------------
// Rows of packed weights (bigemm.go, bf16.go)

// PackedRows writes rows tokens[i] of the weight w was packed from
// (PackWeight) to out (len(tokens), w.K): the embedding lookup of a model
// whose tied embedding exists only as its packed lm_head.
func PackedRows(out []float32, w *PackedWeight, tokens []int32) { packedRows(out, w, tokens) }

// PackedRowsBF16 is PackedRows for a bf16 packed weight: the rows' bf16
// values (the rounding PackWeightBF16 made).
func PackedRowsBF16(out []float32, w *PackedWeightBF16, tokens []int32) {
	packedRowsBF16(out, w, tokens)
}
