package trainer

import (
	"fmt"
	"testing"

	"rljob/kernels"
)

// smpBenchConfig is shape b of issue 3: 6 layers, hidden 256, 8 heads,
// vocab 512, intermediate 8/3·256 rounded up to a multiple of 64 (704),
// tied embeddings.
func smpBenchConfig() Config {
	return Config{ModelType: "llama", HiddenSize: 256, IntermediateSize: 704, NumLayers: 6,
		NumHeads: 8, NumKVHeads: 8, VocabSize: 512, MaxPositionEmbeddings: 1024,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true}
}

// BenchmarkSample measures sampling throughput on shape b: a batch of 32
// prompts of 16 tokens, 64 new tokens each (no stop tokens, temperature 1),
// with the KV cache (Generate) and re-running the full prefix every token
// (GenerateNoCache). tokens/s counts new tokens (32·64 per op); the
// prefill is included in the time. cpu-ms/batch is the process's CPU time
// (less sensitive to other load on a shared machine than wall time).
//
//	go test -tags "$(sh scripts/buildtags.sh)" -run '^$' -bench Sample/ -benchtime 3x ./trainer/
func BenchmarkSample(b *testing.B) {
	const (
		batch  = 32
		newTok = 64
		plen   = 16
	)
	c := smpBenchConfig()
	m, err := NewModel(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	prompts := smpPrompts(1, batch, c.VocabSize, plen)
	seeds := smpSeeds(batch, 1)
	opt := SampleOptions{Temperature: 1, MaxNewTokens: newTok}
	for _, tc := range []struct {
		name string
		gen  func([][]int32, []uint64, SampleOptions) ([]Sample, error)
	}{{"kvcache", m.Generate}, {"nocache", m.GenerateNoCache}} {
		b.Run(tc.name, func(b *testing.B) {
			cpu0 := cpuTime() // bench_test.go: process CPU time
			for b.Loop() {
				out, err := tc.gen(prompts, seeds, opt)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range out {
					if len(s.Tokens) != newTok {
						b.Fatalf("%d new tokens, want %d", len(s.Tokens), newTok)
					}
				}
			}
			cpu := (cpuTime() - cpu0).Seconds()
			b.ReportMetric(float64(batch*newTok)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/batch")
			b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/batch")
		})
	}
}

// BenchmarkSampleMatmul compares the sampler's batch-invariant rowMatmul
// with kernels.MatmulForwardExact (same bits, pure Go) and
// kernels.MatmulForward (OpenBLAS when built with it, not batch-invariant)
// on shape b's decode matmuls (32 rows).
//
//	go test -tags "$(sh scripts/buildtags.sh)" -run '^$' -bench SampleMatmul ./trainer/
func BenchmarkSampleMatmul(b *testing.B) {
	for _, s := range [][3]int{{32, 256, 256}, {32, 256, 704}, {32, 704, 256}, {32, 256, 512}} {
		M, C, OC := s[0], s[1], s[2]
		inp := make([]float32, M*C)
		w := make([]float32, OC*C)
		out := make([]float32, M*OC)
		for i := range inp {
			inp[i] = float32(i%7) * 0.1
		}
		for i := range w {
			w[i] = float32(i%5) * 0.1
		}
		for _, impl := range []struct {
			name string
			f    func(out, inp, weight, bias []float32, M, C, OC int)
		}{{"row", rowMatmul}, {"exact", kernels.MatmulForwardExact}, {"kernels", kernels.MatmulForward}} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", M, C, OC, impl.name), func(b *testing.B) {
				cpu0 := cpuTime()
				for b.Loop() {
					impl.f(out, inp, w, nil, M, C, OC)
				}
				flop := float64(2*M*C*OC) * float64(b.N)
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(flop/(cpuTime()-cpu0).Seconds()/1e9, "GFLOP/cpu-s")
			})
		}
	}
}
