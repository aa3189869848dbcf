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

// TestCUDABenchHarness runs the two benchmarks' harness once on a tiny
// shape (make test-cuda, the emulator, gpu-check.sh's trainer tests), so
// that the first GPU run does not spend its minutes on a broken
// benchmark: each variant must time its steps and report tok/s.
func TestCUDABenchHarness(t *testing.T) {
	be := gpuBackend(t)
	tiny := benchShape{"tiny", 2, 64, 4, 300, 2, 24, 2, 96}
	for _, v := range []struct {
		dtype string
		keep  bool
	}{{DTypeFP32, false}, {DTypeBF16, false}, {DTypeBF16, true}} {
		r := testing.Benchmark(func(b *testing.B) {
			withBackend(b, be)
			benchDeviceTrain(b, tiny, v.dtype, v.keep)
		})
		if r.N < 1 || r.Extra["tok/s"] <= 0 || r.Extra["ms/step"] <= 0 {
			t.Errorf("train %s keep_logits=%v: %d runs, metrics %v", v.dtype, v.keep, r.N, r.Extra)
		}
	}
	withBackend(t, be) // the sampling benchmark's model and its Generate
	c := tiny.config()
	m := benchDeviceModel(t, c, DTypeBF16)
	defer m.Release()
	opt := SampleOptions{Temperature: 1, MaxNewTokens: 5}
	if err := generateAll(m, smpPrompts(1, 3, c.VocabSize, 16), smpSeeds(3, 1), opt); err != nil {
		t.Errorf("sample: %v", err)
	}
}
