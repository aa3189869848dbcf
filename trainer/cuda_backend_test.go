//go:build cuda && cgo

package trainer

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rljob/rljob/kernels"
)

var (
	gpuOnce sync.Once
	gpuBE   Backend
	gpuErr  error
)

// gpuBackend returns the CUDA backend on GPU 0, or skips saying why; with
// RLJOB_REQUIRE_CUDA=1 the skip is a failure.
func gpuBackend(t testing.TB) Backend {
	t.Helper()
	gpuOnce.Do(func() { gpuBE, gpuErr = openCUDABackend() })
	if gpuErr != nil {
		if os.Getenv("RLJOB_REQUIRE_CUDA") == "1" {
			t.Fatalf("RLJOB_REQUIRE_CUDA=1 but no usable GPU: %v", gpuErr)
		}
		t.Skipf("%v; RLJOB_REQUIRE_CUDA=1 turns this skip into a failure", gpuErr)
	}
	return gpuBE
}

// trainStepTol bounds |CUDA − CPU| of a parameter after one train step,
// relative to the largest |parameter|. The kernels are meant to give the
// CPU's bits (then the difference is 0); the one documented exception is
// attention's backward for T < 8 or T > 4096, where the CPU runs scalar
// loops in another order (docs/cuda.md): a few float32 ulps in a gradient,
// which AdamW's normalisation can scale up to ~lr·1e-3 in a parameter.
const trainStepTol = 1e-5

// TestCUDABackendConformance: the same model on the CPU and the CUDA
// backend (fp32; fp32 with Recompute and a chunked head; bf16 with a
// chunked head) gives log-probs that are equal bit for bit (the
// batch-invariant path), at T = 7 and T = 9 (attention's backward takes
// the GEMM path from T = 8), and after one train step (forward, backward,
// AdamW) parameters within trainStepTol; the log-probs of the next forward
// are compared too and the test logs how many differ.
func TestCUDABackendConformance(t *testing.T) {
	be := gpuBackend(t)
	c := testConfig("qwen2", false)
	for _, tc := range []struct {
		name      string
		dtype     string
		recompute bool
		chunk     int
		T         int
	}{
		{"fp32/T7", DTypeFP32, false, 0, 7}, {"fp32/T9", DTypeFP32, false, 0, 9},
		{"fp32/recompute/chunked/T9", DTypeFP32, true, 3, 9}, {"bf16/chunked/T9", DTypeBF16, false, 3, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			b := testBatch(rng, c.VocabSize, []int{tc.T, tc.T - 3}, tc.T)
			targets := NextTokenTargets(b, nil)
			var logp0, logp1, params [2][]float32
			for i, bk := range []Backend{cpu, be} {
				m := newTestModel(t, c, 9)
				m.be = bk
				m.Recompute, m.HeadChunk = tc.recompute, tc.chunk
				if err := m.SetDType(tc.dtype); err != nil {
					t.Fatal(err)
				}
				logp, _, err := m.ForwardLogp(b, targets, 1, false)
				if err != nil {
					t.Fatal(err)
				}
				logp0[i] = slices.Clone(logp)
				dlogp := make([]float32, len(logp))
				for n := range dlogp {
					dlogp[n] = float32(n%3) - 1
				}
				if err := m.BackwardLogp(dlogp, nil); err != nil {
					t.Fatal(err)
				}
				_, p, _ := m.Trainable()
				opt := DefaultAdamW(len(p))
				if _, _, err := m.Step(opt, Schedule{Kind: "constant", LR: 1e-2}); err != nil {
					t.Fatal(err)
				}
				params[i] = slices.Clone(p)
				logp, _, err = m.ForwardLogp(b, targets, 1, false)
				if err != nil {
					t.Fatal(err)
				}
				logp1[i] = slices.Clone(logp)
			}
			if !bitsEqual(logp0[0], logp0[1]) {
				t.Errorf("forward log-probs differ: CPU %v, CUDA %v", logp0[0], logp0[1])
			}
			diff, scale := maxAbsDiff(params[0], params[1])
			if diff > trainStepTol*scale {
				t.Errorf("after one train step: max |CUDA − CPU| parameter difference %g > %g × max |param| %g", diff, trainStepTol, scale)
			}
			n := 0
			for i := range logp1[0] {
				if math.Float32bits(logp1[0][i]) != math.Float32bits(logp1[1][i]) {
					n++
				}
			}
			t.Logf("train step: max parameter difference %g (max |param| %g); %d of %d next log-probs differ in bits", diff, scale, n, len(logp1[0]))
		})
	}
}

func maxAbsDiff(a, b []float32) (diff, scale float64) {
	for i := range a {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(a[i])))
	}
	return diff, scale
}

// TestCUDABackendGenerate: the sampler on the CUDA backend (decode over
// the device-resident KV caches, the packed matmuls, Sample with the
// CPU's draws) samples the CPU backend's tokens with the same log-prob
// bits: fp32 and bf16, temperature with top-k and top-p, greedy, a shared
// prompt (one prefill, restored from a snapshot: a device-to-device
// prefix copy), a sample-only model (LoadForSampling: weights packed on
// the host, adopted by the backend), caches that grow past their first
// capacity (200 new tokens: 128 → 256 positions, copied on the device),
// and sequences that stop early and hand their slot (and cache buffers)
// to the next (MaxBatch 2, stop tokens). After each Generate every
// cache is released and its device memory freed.
func TestCUDABackendGenerate(t *testing.T) {
	be := gpuBackend(t)
	for _, tc := range []struct {
		name, mt, dtype string
		opt             SampleOptions
		sampleOnly      bool
		maxPos          int // max_position_embeddings when > 0
	}{
		{"fp32/T0.8/topk7", "qwen2", DTypeFP32, SampleOptions{Temperature: 0.8, TopK: 7, MaxNewTokens: 24, MaxBatch: 3}, false, 0},
		{"fp32/T1.3/topp0.8", "llama", DTypeFP32, SampleOptions{Temperature: 1.3, TopP: 0.8, MaxNewTokens: 24}, false, 0},
		{"fp32/greedy", "qwen2", DTypeFP32, SampleOptions{MaxNewTokens: 24}, false, 0},
		{"bf16/T1", "qwen2", DTypeBF16, SampleOptions{Temperature: 1, MaxNewTokens: 24}, false, 0},
		{"fp32/sample-only", "llama", DTypeFP32, SampleOptions{Temperature: 1, MaxNewTokens: 24}, true, 0},
		{"bf16/sample-only", "qwen2", DTypeBF16, SampleOptions{Temperature: 0.7, TopK: 5, MaxNewTokens: 24}, true, 0},
		{"fp32/growth", "qwen2", DTypeFP32, SampleOptions{Temperature: 1, MaxNewTokens: 200, MaxBatch: 2}, false, 256},
		{"fp32/stops/maxbatch2", "llama", DTypeFP32, SampleOptions{Temperature: 1.2, MaxNewTokens: 40, MaxBatch: 2, StopTokens: []int{2, 5}}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smpConfig(tc.mt)
			if tc.maxPos > 0 {
				c.MaxPositionEmbeddings = tc.maxPos
			}
			prompts := smpPrompts(2, 5, c.VocabSize, 3, 9, 5)
			prompts = append(prompts, prompts[1])
			seeds := smpSeeds(len(prompts), 7)
			var out [2][]Sample
			for i, bk := range []Backend{cpu, be} {
				m := smpModel(t, c, 5, 8)
				if err := m.SetDType(tc.dtype); err != nil {
					t.Fatal(err)
				}
				if tc.sampleOnly {
					dir := t.TempDir()
					if err := SaveCheckpoint(dir, &Checkpoint{Model: m}); err != nil {
						t.Fatal(err)
					}
					ck, err := LoadForSampling(dir, "")
					if err != nil {
						t.Fatal(err)
					}
					m = ck.Model
				}
				m.be = bk
				out[i] = generate(t, m, prompts, seeds, tc.opt)
			}
			kvFreed(t, be)
			for i := range out[0] {
				if !slices.Equal(out[0][i].Tokens, out[1][i].Tokens) || !bitsEqual(out[0][i].Logprobs, out[1][i].Logprobs) {
					t.Errorf("sequence %d: CPU %v %v, CUDA %v %v", i, out[0][i].Tokens, out[0][i].Logprobs, out[1][i].Tokens, out[1][i].Logprobs)
				}
			}
		})
	}
}

// kvFreed fails unless be's device KV caches are all released and their
// memory freed (no live cache, nothing on the free list), with no error.
func kvFreed(t *testing.T, be Backend) {
	t.Helper()
	b := be.(*cudaBackend)
	b.mu.Lock()
	live, pooled := b.kv.live, b.kv.pooled()
	b.mu.Unlock()
	if live != 0 || pooled != 0 {
		t.Errorf("device KV caches: %d live and %d buffers pooled after the Generate, want none", live, pooled)
	}
	if err := be.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCUDABackendKVCache: the backend's KV caches driven directly, on the
// CPU and the CUDA backend alike: caches made with room for 1 position
// (so appends grow them, 1 → 2 → 4 → …, between and within flushes),
// several appends per cache before one AttentionDecode (a prefill: rows
// sharing a cache with different lengths), one append per cache per
// decode, a prefix copied into a cache that had content and then grows,
// and Len. Every AttentionDecode's output has the CPU's bits; at the end
// the released caches leave nothing on the GPU.
func TestCUDABackendKVCache(t *testing.T) {
	be := gpuBackend(t)
	const NH, NKV, HS = 6, 2, 20
	kvd, qd := NKV*HS, NH*HS
	rng := rand.New(rand.NewPCG(17, 18))
	randv := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	type step struct {
		appends []int // cache index per appended position, in order
		copyTo  int   // with copyN > 0: cache copyTo takes the first copyN positions of cache 0 first
		copyN   int
		rows    [][2]int // (cache, keys) per decode row
	}
	steps := []step{
		{appends: []int{0, 0, 0, 0, 0, 1, 1, 1}, rows: [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {1, 1}, {1, 2}, {1, 3}}},
		{appends: []int{0, 1, 2}, rows: [][2]int{{0, 6}, {1, 4}, {2, 1}}},
		{appends: []int{0, 0, 0, 1, 2, 2}, rows: [][2]int{{0, 9}, {1, 5}, {2, 3}, {0, 7}}},
		{copyTo: 2, copyN: 7, appends: []int{2, 0}, rows: [][2]int{{2, 8}, {0, 10}, {2, 7}, {1, 5}}},
		{appends: []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 1}, rows: [][2]int{{2, 17}, {1, 6}, {2, 12}}},
	}
	type plan struct {
		k, v, q [][]float32
	}
	var p plan
	for _, s := range steps {
		for range s.appends {
			p.k, p.v = append(p.k, randv(kvd)), append(p.v, randv(kvd))
		}
		p.q = append(p.q, randv(len(s.rows)*qd))
	}
	var outs [2][][]float32
	for bi, bk := range []Backend{cpu, be} {
		caches := []KVCache{bk.NewKVCache(NKV, HS, 1), bk.NewKVCache(NKV, HS, 1), bk.NewKVCache(NKV, HS, 1)}
		n, a := []int{0, 0, 0}, 0
		for si, s := range steps {
			if s.copyN > 0 {
				caches[s.copyTo].CopyPrefix(caches[0], s.copyN)
				n[s.copyTo] = s.copyN
			}
			for _, c := range s.appends {
				caches[c].Append(p.k[a], p.v[a])
				a++
				n[c]++
			}
			for c := range caches {
				if caches[c].Len() != n[c] {
					t.Fatalf("backend %s step %d: cache %d has %d positions, want %d", bk.Name(), si, c, caches[c].Len(), n[c])
				}
			}
			rc, lens := make([]KVCache, len(s.rows)), make([]int32, len(s.rows))
			for i, r := range s.rows {
				rc[i], lens[i] = caches[r[0]], int32(r[1])
			}
			out := make([]float32, len(s.rows)*qd)
			bk.AttentionDecode(out, p.q[si], rc, lens, NH)
			outs[bi] = append(outs[bi], out)
		}
		for _, c := range caches {
			c.Release()
		}
	}
	for si := range steps {
		if !bitsEqual(outs[0][si], outs[1][si]) {
			t.Errorf("step %d: AttentionDecode on CUDA differs from the CPU's bits", si)
		}
	}
	kvFreed(t, be)
}

// TestCUDABackendOptimizer: GradNorm and AdamWStep (with and without
// weight decay, clipping scale, zeroing the gradients; two steps over two
// tensors, the moments kept on the device between them and fetched by
// SyncMoments) on the CUDA backend give the CPU backend's bits, on a
// length that is not a multiple of the norm's 2^14 chunks.
func TestCUDABackendOptimizer(t *testing.T) {
	be := gpuBackend(t)
	rng := rand.New(rand.NewPCG(3, 3))
	n := 3*(1<<14) + 77
	rnd := func(s float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * s)
		}
		return x
	}
	p0, m0, g0 := rnd(1), rnd(0.01), rnd(0.1)
	v0 := make([]float32, n)
	for i := range v0 {
		v0[i] = float32(math.Abs(rng.NormFloat64() * 1e-4))
	}
	if a, b := cpu.GradNorm(g0), be.GradNorm(g0); a != b {
		t.Errorf("GradNorm: CPU %v, CUDA %v", a, b)
	}
	for _, wd := range []float32{0, 0.01} {
		var out [2][4][]float32
		for i, bk := range []Backend{cpu, be} {
			p, g := slices.Clone(p0), slices.Clone(g0)
			o := &AdamW{M: slices.Clone(m0), V: slices.Clone(v0)}
			cfg := kernels.AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd}
			// two steps over two tensors (the second at an offset into the
			// moments), the second step on the moments kept on the device
			h := n/2 + 5
			for step := 3; step <= 4; step++ {
				bk.AdamWStep(p[:h], g[:h], o, 0, 0.7, cfg, step, false)
				bk.AdamWStep(p[h:], g[h:], o, h, 0.7, cfg, step, wd > 0 && step == 4)
			}
			if err := o.SyncMoments(); err != nil {
				t.Fatal(err)
			}
			if (o.keeper != nil) != (bk == be) {
				t.Errorf("backend %s: moments kept by %v", bk.Name(), o.keeper)
			}
			out[i] = [4][]float32{p, o.M, o.V, g}
			if o.keeper != nil {
				o.keeper.DropMoments(o)
				if cb, ok := o.keeper.(*cudaBackend); ok && len(cb.moms) != 0 {
					t.Errorf("DropMoments left %d optimizers' moments on the device", len(cb.moms))
				}
			}
		}
		for j, what := range []string{"params", "m", "v", "grads"} {
			if !bitsEqual(out[0][j], out[1][j]) {
				t.Errorf("AdamWStep (weight decay %v): %s differ between CPU and CUDA", wd, what)
			}
		}
	}
	if err := be.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCUDABackendErr: a device-side failure (a token outside the
// embedding) does not panic: it becomes the backend's sticky error, named
// by its kernel, which the next forward returns (on a backend of its own,
// so the shared one stays healthy).
func TestCUDABackendErr(t *testing.T) {
	gpuBackend(t)
	be, err := openCUDABackend()
	if err != nil {
		t.Fatal(err)
	}
	C, V := 8, 5
	out, wte := make([]float32, 2*C), make([]float32, V*C)
	be.EmbeddingForward(out, wte, []int32{1, 60}, 2, C)
	if err := be.Err(); err == nil || !strings.Contains(err.Error(), "embedding_forward") {
		t.Fatalf("Err after a token out of range: %v, want one naming embedding_forward", err)
	}
	c := testConfig("qwen2", false)
	m := newTestModel(t, c, 9)
	m.be = be
	b := testBatch(rand.New(rand.NewPCG(5, 5)), c.VocabSize, []int{7}, 7)
	if _, _, err := m.ForwardLogp(b, NextTokenTargets(b, nil), 1, false); err == nil ||
		!strings.Contains(err.Error(), "trainer: forward on cuda") || !strings.Contains(err.Error(), "embedding_forward") {
		t.Errorf("forward on a failed backend: %v", err)
	}
}

// TestCUDABackendResident: a model whose parameters, gradients,
// activations and adapters stay on the GPU (Keep) gives, in training
// (fp32, bf16, recompute with a chunked head, LoRA), sampling and its
// checkpoint, the bits of the same model whose every call stages its
// tensors through the host (the kernels are the same and deterministic:
// only where the tensors live differs). Then no kept buffer is left on
// the GPU: every model was released.
func TestCUDABackendResident(t *testing.T) {
	be := gpuBackend(t).(*cudaBackend)
	setStaged := func(v bool) {
		be.mu.Lock()
		be.staged = v
		be.mu.Unlock()
	}
	setStaged(true)
	t.Cleanup(func() { setStaged(false) })
	sameBitsOn(t, be, func() Backend { setStaged(false); return be }, "the GPU with the model's buffers resident")
	if err := be.Err(); err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	be.res.sweep()
	left := len(be.res.regs)
	be.mu.Unlock()
	if left != 0 {
		t.Errorf("%d kept buffers still on the GPU after every model was released", left)
	}
}
