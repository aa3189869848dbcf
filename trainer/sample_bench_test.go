package trainer

import (
	"testing"
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
