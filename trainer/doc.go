// Package trainer is rljob's policy model: a decoder-only transformer of
// the Llama/Qwen2 family (RMSNorm, RoPE, SwiGLU, grouped-query attention,
// optional tied embeddings and Qwen2 q/k/v biases), fp32 on CPU, with
// forward and backward written out layer by layer on package kernels in
// the style of llm.c; AdamW with a warm-up + cosine/constant schedule; and
// checkpoints in Hugging Face layout.
//
// Parameters live in one flat []float32 (Model.Params) with a table of
// named views (ParamTable: HF tensor names and shapes); the gradients and
// the AdamW moments use the same layout, so checkpoint I/O, the optimizer
// and the tests all walk one table.
//
// A training step reads top to bottom:
//
//	m.ZeroGrad()                                   // free right after Step
//	logp, ent, _ := m.ForwardLogp(batch, targets, temperature, true)
//	dlogp, dent := loss(logp, ent)                 // ∂L/∂logp, ∂L/∂H per token (trainer/loss)
//	m.BackwardLogp(dlogp, dent)                    // accumulates into m.Grads
//	gradNorm, lr, _ := m.Step(opt, schedule)       // clip, AdamW, zero grads
//
// and for SFT, ForwardCE/BackwardCE in place of the logp pair.
//
// Every forward (Forward, ForwardLogp, ForwardCE) and the sampler
// (Generate, with its KV cache) run kernels' batch-invariant matmul and
// attention, so the log-probabilities a rollout stores and those
// ForwardLogp recomputes are equal bit for bit, whatever the batch, its
// padding or the thread count (the first PPO ratio is exactly 1). The
// backward runs the same fixed-order FMA matmul kernel (kernels/gemm.go).
//
// Memory (docs/memory.md): the loss head runs chunk by chunk over tokens
// (HeadChunk), so no (tokens × vocabulary) buffer exists; gradients are
// allocated at the first backward; Recompute keeps one layer's
// activations; TrainMemory estimates a step before it allocates; large
// buffers go back to a process pool on Release.
//
// LoRA (lora.go, adapter.go, docs/lora.md): NewLoRA attaches PEFT-style
// adapters to the targeted linear layers and freezes the base; the
// sampler and the trainer apply them through one function, keeping the
// bitwise log-prob parity. A checkpoint of an adapted model holds the
// adapters in PEFT's format and names its base; ExportMerged and
// ExportAdapter write a merged HF model or a PEFT adapter folder.
//
// Checkpoints: SaveCheckpoint (into an existing folder, e.g. the lake's
// staging folder), SaveCheckpointAtomic (temp dir, fsync, rename), or
// Checkpoint.WriteFiles through any writer; LoadCheckpoint validates every
// tensor's name, shape and dtype.
package trainer
