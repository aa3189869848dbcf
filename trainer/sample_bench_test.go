package trainer

import (
	"fmt"
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

// BenchmarkSample measures sampling throughput: shape b (6 layers, hidden
// 256, vocab 512) with a batch of 32 prompts and shape c (12 layers,
// hidden 768, vocab 50257) with 8, 16-token prompts, 64 new tokens each
// (no stop tokens, temperature 1), with the KV cache (Generate).
// BenchmarkSampleNoCache is the baseline without the cache.
// tokens/s counts new tokens; the prefill is in the time. GFLOP/s is
// 2·MatmulParams per token over prompt and new tokens (attention not
// counted, as in BenchmarkTrainStep; "train" runs BenchmarkTrainStepLogp's
// step on the same shape in the same run, to compare FLOP rates).
// cpu-ms/batch is the process's CPU time (less sensitive to other load on
// a shared machine).
//
//	go test -tags duckdb_arrow -run '^$' -bench 'Sample$' -benchtime 3x ./trainer/
func BenchmarkSample(b *testing.B) {
	for _, sh := range []struct {
		shape benchShape
		batch int
	}{{benchShapes[1], 32}, {benchShapes[2], 8}} {
		benchSample(b, sh.shape, sh.batch, false)
		b.Run(fmt.Sprintf("%s/train", sh.shape.name), func(b *testing.B) { benchTrain(b, sh.shape, "logp") })
	}
}

// BenchmarkSampleNoCache is BenchmarkSample's shape b re-running the full
// prefix every token (GenerateNoCache), the sampler's reference twin.
func BenchmarkSampleNoCache(b *testing.B) { benchSample(b, benchShapes[1], 32, true) }

func benchSample(b *testing.B, shape benchShape, batch int, nocache bool) {
	const (
		newTok = 64
		plen   = 16
	)
	c := shape.config()
	m, err := NewModel(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	prompts := smpPrompts(1, batch, c.VocabSize, plen)
	seeds := smpSeeds(batch, 1)
	opt := SampleOptions{Temperature: 1, MaxNewTokens: newTok}
	name, gen := "kvcache", m.Generate
	if nocache {
		name, gen = "nocache", m.GenerateNoCache
	}
	b.Run(fmt.Sprintf("%s/batch%d/%s", shape.name, batch, name), func(b *testing.B) {
		cpu0 := cpuTime() // bench_test.go: process CPU time
		for b.Loop() {
			out, err := gen(prompts, seeds, opt)
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
		sec := b.Elapsed().Seconds()
		b.ReportMetric(float64(batch*newTok)*float64(b.N)/sec, "tokens/s")
		b.ReportMetric(2*float64(MatmulParams(c))*float64(batch*(newTok+plen))*float64(b.N)/sec/1e9, "GFLOP/s")
		b.ReportMetric(sec*1e3/float64(b.N), "ms/batch")
		b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/batch")
	})
}
