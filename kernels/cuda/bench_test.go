//go:build cuda && cgo

package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// GPU benchmarks at the Qwen2.5-0.5B shapes (hidden 896, 14 heads, 2 KV
// heads of 64, intermediate 4864, vocab 151936, 24 layers) on 8 × 1024
// tokens (`make bench-cuda`, scripts/gpu-check.sh). Each reports its
// device time per op from CUDA-synchronised wall time.

type gemmShape struct {
	name    string
	M, N, K int
}

// qwen05Layer are one layer's products (q,k,v fused; o; gate,up fused;
// down) and the head over the vocabulary, for M tokens.
func qwen05Layer(M int) []gemmShape {
	return []gemmShape{
		{"qkv", M, 896 + 2*128, 896},
		{"o", M, 896, 896},
		{"gate_up", M, 2 * 4864, 896},
		{"down", M, 896, 4864},
	}
}

func qwen05Head(M int) gemmShape { return gemmShape{"lm_head", M, 151936, 896} }

func gemmBufs(b *testing.B, d *Device, s gemmShape) (x, w, c, x16, w16 *Buf) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, w = up(b, d, "x", randn(rng, s.M*s.K, 1)), up(b, d, "w", randn(rng, s.N*s.K, 0.05))
	c = up(b, d, "c", make([]float32, s.M*s.N))
	var err error
	x16, err = d.Alloc("x bf16", BF16, s.M*s.K)
	must(b, err)
	w16, err = d.Alloc("w bf16", BF16, s.N*s.K)
	must(b, err)
	b.Cleanup(x16.Free)
	b.Cleanup(w16.Free)
	must(b, d.ToBF16(x16, x, s.M*s.K))
	must(b, d.ToBF16(w16, w, s.N*s.K))
	return
}

// runGemm times one product of shape s on path ("bi" or a cuBLAS mode).
func runGemm(b *testing.B, d *Device, path string, s gemmShape, x, w, c, x16, w16 *Buf) error {
	switch path {
	case "bi", "bi128":
		tile := 64
		if path == "bi128" {
			tile = 128
		}
		if err := d.SetGemmTile(tile); err != nil {
			return err
		}
		defer d.SetGemmTile(64)
		return d.MatmulForward(c, x, w, nil, s.M, s.K, s.N)
	case "bi_bf16":
		return d.MatmulForwardBF16(c, x, w16, nil, s.M, s.K, s.N)
	case "bf16":
		return d.GemmCublas(GemmBF16, false, true, s.M, s.N, s.K, 1, x16, s.K, w16, s.K, 0, c, s.N)
	case "tf32":
		return d.GemmCublas(GemmTF32, false, true, s.M, s.N, s.K, 1, x, s.K, w, s.K, 0, c, s.N)
	}
	return d.GemmCublas(GemmFP32, false, true, s.M, s.N, s.K, 1, x, s.K, w, s.K, 0, c, s.N)
}

// BenchmarkCUDAGemm: each path on each 0.5B product, TFLOP/s.
func BenchmarkCUDAGemm(b *testing.B) {
	d := openDev(b)
	for _, s := range append(qwen05Layer(8192), qwen05Head(1024)) {
		x, w, c, x16, w16 := gemmBufs(b, d, s)
		for _, path := range []string{"bi", "bi128", "bi_bf16", "fp32", "tf32", "bf16"} {
			b.Run(fmt.Sprintf("%s_%dx%dx%d/%s", s.name, s.M, s.N, s.K, path), func(b *testing.B) {
				must(b, runGemm(b, d, path, s, x, w, c, x16, w16)) // warm-up
				must(b, d.Sync())
				b.ResetTimer()
				for range b.N {
					must(b, runGemm(b, d, path, s, x, w, c, x16, w16))
				}
				must(b, d.Sync())
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(2*float64(s.M)*float64(s.N)*float64(s.K)/sec/1e12, "TFLOP/s")
			})
		}
	}
}

// BenchmarkCUDAForwardGemms: the matrix products of a whole 0.5B forward
// over 8 × 1024 tokens (24 layers, then the head in 8 row chunks of 1024)
// through a batch-invariant GEMM (FP32, or bf16 in the CPU's VDPBF16PS
// order) against a cuBLAS path; "x_bi" is the batch-invariant time over
// cuBLAS's. Attention, norms and the head's softmax are not included.
func BenchmarkCUDAForwardGemms(b *testing.B) {
	d := openDev(b)
	shapes := qwen05Layer(8192)
	head := qwen05Head(1024)
	type bufs struct{ x, w, c, x16, w16 *Buf }
	all := make([]bufs, len(shapes)+1)
	for i, s := range append(shapes, head) {
		x, w, c, x16, w16 := gemmBufs(b, d, s)
		all[i] = bufs{x, w, c, x16, w16}
	}
	forward := func(path string) error {
		for range 24 {
			for i, s := range shapes {
				if err := runGemm(b, d, path, s, all[i].x, all[i].w, all[i].c, all[i].x16, all[i].w16); err != nil {
					return err
				}
			}
		}
		h := all[len(shapes)]
		for range 8 {
			if err := runGemm(b, d, path, head, h.x, h.w, h.c, h.x16, h.w16); err != nil {
				return err
			}
		}
		return d.Sync()
	}
	timeOf := func(path string) time.Duration {
		must(b, forward(path))
		t0 := time.Now()
		must(b, forward(path))
		return time.Since(t0)
	}
	for _, pair := range [][2]string{{"bi", "fp32"}, {"bi128", "fp32"}, {"bi", "tf32"}, {"bi", "bf16"}, {"bi_bf16", "bf16"}} {
		b.Run(pair[0]+"_vs_"+pair[1], func(b *testing.B) {
			var bi, other time.Duration
			for range b.N {
				bi += timeOf(pair[0])
				other += timeOf(pair[1])
			}
			b.ReportMetric(bi.Seconds()/float64(b.N)*1e3, "ms_"+pair[0])
			b.ReportMetric(other.Seconds()/float64(b.N)*1e3, "ms_"+pair[1])
			b.ReportMetric(bi.Seconds()/other.Seconds(), "x_bi")
		})
	}
}

// BenchmarkCUDASample: one sampling step (Device.Sample) over the 0.5B
// vocabulary for batch 64 and 256; rows/s is tokens per second of the
// sampling kernel alone (no forward).
func BenchmarkCUDASample(b *testing.B) {
	d := openDev(b)
	const V = 151936
	for _, N := range []int{64, 256} {
		rng := rand.New(rand.NewPCG(3, uint64(N)))
		x := up(b, d, "logits", randn(rng, N*V, 3))
		tok := upI32(b, d, "tok", make([]int32, N))
		lp := up(b, d, "logp", make([]float32, N))
		u := make([]float64, N)
		for i := range u {
			u[i] = rng.Float64()
		}
		for _, p := range []SampleParams{{1, 0, 0}, {0.7, 50, 0}, {1, 0, 0.9}} {
			b.Run(fmt.Sprintf("batch%d/temp%g_topk%d_topp%g", N, p.Temp, p.TopK, p.TopP), func(b *testing.B) {
				must(b, d.Sample(tok, lp, x, V, N, V, u, p))
				must(b, d.Sync())
				b.ResetTimer()
				for range b.N {
					must(b, d.Sample(tok, lp, x, V, N, V, u, p))
				}
				must(b, d.Sync())
				b.ReportMetric(float64(N*b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
