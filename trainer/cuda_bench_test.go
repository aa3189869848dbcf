//go:build cuda && cgo

package trainer

import "testing"

// BenchmarkCUDATrainStepQwen is issue 18's train-step benchmark on a GPU:
// the 0.5B shape at 8 × 1024 tokens, fp32 and bf16, the model's buffers
// kept on the device; tok/s, TFLOP/s and MFU against the card's peak
// (goal: MFU ≥ 40 % in bf16). bf16-keep_logits keeps the micro-batch's
// logits (keep_logits): the head then runs in one launch of 8,192 rows
// instead of 152 chunks of 54 rows each way, whose per-row sums over
// the vocabulary are serial (docs/cuda.md), and computes no logits again.
//
//	go test -tags "duckdb_arrow cuda" -run '^$' -bench CUDATrainStepQwen -benchtime 3x ./trainer/
func BenchmarkCUDATrainStepQwen(b *testing.B) {
	be := gpuBackend(b)
	for _, v := range []struct {
		name, dtype string
		keep        bool
	}{{DTypeFP32, DTypeFP32, false}, {DTypeBF16, DTypeBF16, false}, {DTypeBF16 + "-keep_logits", DTypeBF16, true}} {
		b.Run(v.name, func(b *testing.B) {
			withBackend(b, be)
			benchDeviceTrain(b, qwenGPUShape, v.dtype, v.keep)
		})
	}
}

// BenchmarkCUDASampleQwen is issue 18's sampling benchmark: the 0.5B
// shape, 64 and 256 sequences of 512 new tokens (goal: ≥ 10,000 tokens/s
// at 256 on one H100), fp32 and bf16.
//
//	go test -tags "duckdb_arrow cuda" -run '^$' -bench CUDASampleQwen -benchtime 1x ./trainer/
func BenchmarkCUDASampleQwen(b *testing.B) {
	be := gpuBackend(b)
	withBackend(b, be)
	for _, dt := range []string{DTypeFP32, DTypeBF16} {
		for _, batch := range []int{64, 256} {
			benchDeviceSample(b, qwenGPUShape, dt, batch, 512)
		}
	}
}
