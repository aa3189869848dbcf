package trainer

import "github.com/rljob/rljob/kernels"

// Memory estimates of training, for choosing the micro-batch from a budget
// before anything is allocated (docs/memory.md). They count the float32
// buffers the trainer holds; Go's own overhead and the process's other
// data are what the caller's safety margin is for.

// activationFloats is the size of a model's activation arena for B
// sequences of T tokens (Model.ensure's layout), with every layer's
// activations or, under recompute, one layer's.
func activationFloats(c Config, B, T, headChunk int, recompute bool) int {
	N := B * T
	C, I, V, L := c.HiddenSize, c.IntermediateSize, c.VocabSize, c.NumLayers
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	perLayer := 2*N + 2*N*qd + 2*N*kvd + B*c.NumHeads*T + 2*N*I
	saved := L
	if recompute {
		saved = 1
	}
	return (L+1)*N*C + saved*perLayer + 3*N*C + 6*N + 2*min(headChunk, N)*V +
		2*N*C + 3*N*qd + 3*N*kvd + 3*N*I
}

// TrainMemory is the estimate, in bytes, of a training stage on a model
// of config c (with adapters lora, or nil for full fine-tuning):
//
//	fixed    weights; gradients and AdamW's two moments of what is trained
//	         (the base's under full fine-tuning, the adapters' under LoRA);
//	         lm_head packed for the batch-invariant matmul (full
//	         fine-tuning only), the head's chunks, and the GEMM's packing
//	         scratch
//	perSeq   the activations of one sequence of T tokens, every layer's or
//	         under recompute (Model.Recompute) one layer's, and under LoRA
//	         the adapters' scratch (the arena grows linearly in the
//	         micro-batch; the head's chunk buffers are counted in fixed)
//
// so a micro-batch of B sequences needs fixed + B·perSeq.
func TrainMemory(c Config, lora *LoRAConfig, T int, recompute bool) (fixed, perSeq uint64) {
	P := uint64(NumParams(c))
	trained := 3 * P // gradients, m, v
	if lora != nil {
		tab := LoRATable(c, *lora)
		n := uint64(0)
		if len(tab) > 0 {
			n = uint64(tab[len(tab)-1].Offset + tab[len(tab)-1].Size)
		}
		trained = 4 * n // adapters, gradients, m, v
	}
	C, I, V := uint64(c.HiddenSize), uint64(c.IntermediateSize), uint64(c.VocabSize)
	ch := (&Model{Config: c}).headChunk(1 << 30)
	// lm_head packed for the batch-invariant forward (not under LoRA:
	// Model.headStreamed), the head's two chunk buffers, and the GEMM's
	// packing scratch: the largest matrix, or kernels.GemmPackFloats
	// when it is larger (matmuls pack their weight slice by slice).
	head := V*C + 2*uint64(ch)*V
	if lora != nil {
		head -= V * C
	}
	scratch := min(max(I*C, uint64(c.NumHeads*c.HeadDim())*C, V*C), kernels.GemmPackFloats)
	fixed = 4 * (P + trained + head + scratch)
	one := activationFloats(c, 1, T, 0, recompute)
	two := activationFloats(c, 2, T, 0, recompute)
	perSeq = 4 * uint64(two-one)
	if lora != nil {
		perSeq += 4 * uint64(T) * uint64(loraScratchPerRow(c, *lora))
	}
	return fixed, perSeq
}

// loraScratchPerRow is the floats per row of the adapters' scratch
// (loraAdd, loraBackward): the widest target's output and two rank-wide
// products.
func loraScratchPerRow(c Config, cfg LoRAConfig) int {
	n := 0
	for _, name := range cfg.Targets {
		out, _ := loraShape(c, loraTargetIndex(name))
		n = max(n, out)
	}
	return n + 2*cfg.Rank
}

// KeepLogitsMemory is what a head of N rows holds (HeadChunk = N: the
// forward's logits of a whole micro-batch of N tokens kept for the
// backward, which then computes no logits again) beyond TrainMemory's
// count of the default chunk's two buffers, in bytes: 8·V per row past
// the default chunk's rows.
func KeepLogitsMemory(c Config, N int) uint64 {
	ch := (&Model{Config: c}).headChunk(1 << 30)
	if N <= ch {
		return 0
	}
	return 8 * uint64(N-ch) * uint64(c.VocabSize)
}

// RolloutMemory is the estimate, in bytes, of sampling with a model of
// config c loaded for sampling (LoadForSampling): the weights once, in
// the sampler's packed layout (fp32: half as much in bf16), and the KV
// cache of rows sequences of up to T tokens.
func RolloutMemory(c Config, rows, T int) uint64 {
	P := uint64(NumParams(c))
	kv := uint64(2*c.NumLayers*c.NumKVHeads*c.HeadDim()) * uint64(rows) * uint64(T)
	return 4 * (P + kv)
}

// BF16Memory is what a bf16 model holds besides TrainMemory's count, in
// bytes: its weights packed as bf16 (2 bytes a weight, lm_head's among
// them), the layers' matrices packed transposed for the backward
// (refreshBF16T, 2 bytes a weight) and lm_head packed transposed (headT,
// 2 bytes a weight: built only for a head of one chunk, so an upper
// bound), less the fp32 packed lm_head TrainMemory counts for full
// fine-tuning, which bf16 does not build (4 bytes a weight). 0 in fp32.
func (m *Model) BF16Memory() uint64 {
	if !m.isBF16() {
		return 0
	}
	c := m.Config
	VC := uint64(c.VocabSize) * uint64(c.HiddenSize)
	n := 2*uint64(NumParams(c)) + 2*layerMatrixParams(c) + 2*VC
	if m.LoRA == nil {
		n -= 4 * VC
	}
	return n
}

// layerMatrixParams is the number of weights in the layers' matrices
// (q, k, v, o, gate, up, down of every layer).
func layerMatrixParams(c Config) uint64 {
	C, I := uint64(c.HiddenSize), uint64(c.IntermediateSize)
	qd, kvd := uint64(c.NumHeads*c.HeadDim()), uint64(c.NumKVHeads*c.HeadDim())
	return uint64(c.NumLayers) * (2*qd*C + 2*kvd*C + 3*I*C)
}

// Reserve lays out the activation arena for the largest batch a stage
// will run, B sequences of T tokens, before the first forward: the
// smaller batches after it (micro-batches are padded to their own longest
// row) reuse it instead of growing it, so the stage holds one arena, not
// one per growth. Set Recompute first; nothing is computed.
func (m *Model) Reserve(B, T int) {
	if B > 0 && T > 0 && m.sampler == nil {
		m.ensure(B, T)
	}
}
