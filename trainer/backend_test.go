package trainer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// countingBackend counts some of the calls that reach it and passes them
// on to the CPU backend.
type countingBackend struct {
	Backend
	n   map[string]int
	kvs []*countedKV // every KV cache made (NewKVCache)
}

func (c *countingBackend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	c.n["MatmulForward"]++
	c.Backend.MatmulForward(out, inp, weight, bias, N, C, OC)
}

func (c *countingBackend) MatmulForwardBF16(out, inp []float32, pw *kernels.PackedWeightBF16, bias []float32, N int) {
	c.n["MatmulForwardBF16"]++
	c.Backend.MatmulForwardBF16(out, inp, pw, bias, N)
}

func (c *countingBackend) AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	c.n["AttentionForward"]++
	c.Backend.AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
}

func (c *countingBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	c.n["AttentionBackward"]++
	c.Backend.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

func (c *countingBackend) HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	c.n["HeadForward"]++
	c.Backend.HeadForward(e, r, lse, logp, ent, logits, targets, N, V, VL, temp)
}

func (c *countingBackend) HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	c.n["HeadBackwardLogp"]++
	c.Backend.HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent, targets, N, V, VL, temp)
}

func (c *countingBackend) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	c.n["RMSNormBackward"]++
	c.Backend.RMSNormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
}

func (c *countingBackend) EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	c.n["EmbeddingBackward"]++
	c.Backend.EmbeddingBackward(dwte, dout, tokens, N, C)
}

func (c *countingBackend) MatmulForwardPacked(out, inp []float32, pw *kernels.PackedWeight, bias []float32, N int) {
	c.n["MatmulForwardPacked"]++
	c.Backend.MatmulForwardPacked(out, inp, pw, bias, N)
}

func (c *countingBackend) PackWeight(pw *kernels.PackedWeight, weight []float32, N, K int) *kernels.PackedWeight {
	c.n["PackWeight"]++
	return c.Backend.PackWeight(pw, weight, N, K)
}

func (c *countingBackend) FreeWeight(pw *kernels.PackedWeight) {
	c.n["FreeWeight"]++
	c.Backend.FreeWeight(pw)
}

func (c *countingBackend) RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	c.n["RMSNormForward"]++
	c.Backend.RMSNormForward(out, rstd, inp, weight, N, C, eps)
}

func (c *countingBackend) RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	c.n["RopeForward"]++
	c.Backend.RopeForward(out, inp, pos, N, NH, HS, theta)
}

func (c *countingBackend) SwiGLUForward(out, gate, up []float32, N int) {
	c.n["SwiGLUForward"]++
	c.Backend.SwiGLUForward(out, gate, up, N)
}

func (c *countingBackend) ResidualForward(out, a, b []float32, N int) {
	c.n["ResidualForward"]++
	c.Backend.ResidualForward(out, a, b, N)
}

func (c *countingBackend) NewKVCache(NKV, HS, capacity int) KVCache {
	c.n["NewKVCache"]++
	k := &countedKV{KVCache: c.Backend.NewKVCache(NKV, HS, capacity), c: c}
	c.kvs = append(c.kvs, k)
	return k
}

func (c *countingBackend) AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int) {
	c.n["AttentionDecode"]++
	inner := make([]KVCache, len(caches))
	for i, k := range caches {
		k := k.(*countedKV)
		k.use()
		inner[i] = k.KVCache
	}
	c.Backend.AttentionDecode(out, q, inner, lens, NH)
}

// countedKV is a KVCache of the countingBackend: it counts its releases
// and every use after one ("KVCache use after release").
type countedKV struct {
	KVCache
	c        *countingBackend
	releases int
}

func (k *countedKV) use() {
	if k.releases > 0 {
		k.c.n["KVCache use after release"]++
	}
}

func (k *countedKV) Append(key, v []float32) {
	k.use()
	k.KVCache.Append(key, v)
}

func (k *countedKV) CopyPrefix(src KVCache, n int) {
	s := src.(*countedKV)
	k.use()
	s.use()
	k.KVCache.CopyPrefix(s.KVCache, n)
}

func (k *countedKV) Release() {
	k.releases++
	k.c.n["KVCache.Release"]++
	k.KVCache.Release()
}

// releasedOnce fails unless every cache the backend made was released
// exactly once and none was used after.
func (c *countingBackend) releasedOnce(t *testing.T) {
	t.Helper()
	for i, k := range c.kvs {
		if k.releases != 1 {
			t.Errorf("KV cache %d of %d released %d times, want once", i, len(c.kvs), k.releases)
			break
		}
	}
	if n := c.n["KVCache use after release"]; n > 0 {
		t.Errorf("%d uses of a released KV cache", n)
	}
}

func (c *countingBackend) Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64) {
	c.n["Sample"] += N
	c.n["Sample calls"]++
	c.Backend.Sample(tok, logp, logits, u, ld, N, V, temp, topK, topP)
}

func (c *countingBackend) AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	c.n["AdamWStep"]++
	c.Backend.AdamWStep(params, grads, o, off, gradScale, cfg, t, zeroGrads)
}

func (c *countingBackend) GradNorm(g []float32) float64 {
	c.n["GradNorm"]++
	return c.Backend.GradNorm(g)
}

// TestBackendCarriesCompute: a logp forward and backward reach compute
// through the model's backend, once per layer and head chunk as the
// orchestration says (Recompute runs each layer's forward again, a
// chunked head recomputes its logits), with the bits of the CPU backend.
func TestBackendCarriesCompute(t *testing.T) {
	c := testConfig("qwen2", false)
	L := c.NumLayers
	for _, tc := range []struct {
		name      string
		dtype     string
		recompute bool
		chunk     int // head chunks of 3 rows: ceil(N/3) of them
	}{{"fp32", DTypeFP32, false, 0}, {"fp32/recompute/chunked", DTypeFP32, true, 3}, {"bf16/chunked", DTypeBF16, false, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			b := testBatch(rng, c.VocabSize, []int{7, 4}, 7)
			targets := NextTokenTargets(b, nil)
			N := b.B * b.T
			chunks := 1
			if tc.chunk > 0 {
				chunks = (N + tc.chunk - 1) / tc.chunk
			}
			var want, got [2][]float32
			for i := range 2 {
				m := newTestModel(t, c, 9)
				m.Recompute, m.HeadChunk = tc.recompute, tc.chunk
				if err := m.SetDType(tc.dtype); err != nil {
					t.Fatal(err)
				}
				cb := &countingBackend{Backend: cpu, n: map[string]int{}}
				if i == 1 {
					m.be = cb
				}
				logp, _, err := m.ForwardLogp(b, targets, 1, false)
				if err != nil {
					t.Fatal(err)
				}
				out := &want
				if i == 1 {
					out = &got
				}
				out[0] = slices.Clone(logp)
				dlogp := make([]float32, N)
				for n := range dlogp {
					dlogp[n] = float32(n%3) - 1
				}
				if err := m.BackwardLogp(dlogp, nil); err != nil {
					t.Fatal(err)
				}
				_, _, grads := m.Trainable()
				out[1] = slices.Clone(grads)
				if i == 0 {
					continue
				}
				headFwd := chunks
				if chunks > 1 {
					headFwd = 2 * chunks // the backward recomputes every chunk's logits
				}
				fwdLayers := L
				oProj := L // the backward recomputes x2 = x + att·Woᵀ
				if tc.recompute {
					fwdLayers, oProj = 2*L, 0 // (the layer's recompute has it)
				}
				expect := map[string]int{
					"AttentionForward": fwdLayers, "AttentionBackward": L,
					"HeadForward": headFwd, "HeadBackwardLogp": chunks,
					"RMSNormBackward": 2*L + 1, "EmbeddingBackward": 1,
				}
				if tc.dtype == DTypeBF16 {
					expect["MatmulForwardBF16"] = 7*fwdLayers + oProj + headFwd
				} else {
					expect["MatmulForward"] = 7*fwdLayers + oProj
				}
				for k, v := range expect {
					if cb.n[k] != v {
						t.Errorf("%s: %d calls through the backend, want %d", k, cb.n[k], v)
					}
				}
			}
			for j, what := range []string{"logp", "grads"} {
				if !bitsEqual(want[j], got[j]) {
					t.Errorf("%s differ between the CPU backend and the counting one", what)
				}
			}
		})
	}
	for _, dtype := range []string{DTypeFP32, DTypeBF16} {
		t.Run("generate/"+dtype, func(t *testing.T) { testBackendCarriesGenerate(t, dtype) })
	}
	t.Run("step", testBackendCarriesStep)
}

// testBackendCarriesGenerate: the sampler's decode reaches the backend
// for every computation (per pass: L attention decodes, 7L matmuls and
// the head, 2L+1 norms, 2L RoPEs, 2L residuals, L SwiGLUs; one Sample per
// token, one call per step; one KV cache per started sequence and layer,
// and per layer of a shared prompt's snapshot; fp32: the 7L+1 matrices
// packed once and freed at the end), with the CPU backend's tokens and
// bits.
func testBackendCarriesGenerate(t *testing.T, dtype string) {
	c := smpConfig("qwen2")
	L := c.NumLayers
	prompts := smpPrompts(2, 5, c.VocabSize, 3, 6, 4)
	prompts = append(prompts, prompts[0]) // a shared prompt: one prefill, one snapshot
	seeds := smpSeeds(len(prompts), 11)
	opt := SampleOptions{Temperature: 0.8, TopK: 7, MaxNewTokens: 9, MaxBatch: 4}
	var out [2][]Sample
	cb := &countingBackend{Backend: cpu, n: map[string]int{}}
	for i := range out {
		m := smpModel(t, c, 5, 8)
		if err := m.SetDType(dtype); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			m.be = cb
		}
		out[i] = generate(t, m, prompts, seeds, opt)
	}
	tokens := 0
	for i := range out[0] {
		tokens += len(out[1][i].Tokens)
		if !slices.Equal(out[0][i].Tokens, out[1][i].Tokens) || !bitsEqual(out[0][i].Logprobs, out[1][i].Logprobs) {
			t.Errorf("sequence %d: CPU backend %v %v, counting backend %v %v", i,
				out[0][i].Tokens, out[0][i].Logprobs, out[1][i].Tokens, out[1][i].Logprobs)
		}
	}
	n := cb.n
	passes := n["AttentionDecode"] / L
	if passes == 0 || n["AttentionDecode"] != passes*L {
		t.Fatalf("AttentionDecode: %d calls, want a positive multiple of %d layers", n["AttentionDecode"], L)
	}
	mm, packs := "MatmulForwardPacked", 7*L+1 // packed once per Generate, freed at its end
	if dtype == DTypeBF16 {
		mm, packs = "MatmulForwardBF16", 0 // the model's bf16 packs
	}
	expect := map[string]int{
		mm: (7*L + 1) * passes, "RMSNormForward": (2*L + 1) * passes, "RopeForward": 2 * L * passes,
		"ResidualForward": 2 * L * passes, "SwiGLUForward": L * passes, "Sample": tokens,
		"NewKVCache": (len(prompts) + 1) * L, "PackWeight": packs, "FreeWeight": packs,
	}
	for k, v := range expect {
		if n[k] != v {
			t.Errorf("%s: %d calls through the backend, want %d (%d passes)", k, n[k], v, passes)
		}
	}
	cb.releasedOnce(t)
	t.Logf("%d passes, %d tokens in %d Sample calls", passes, tokens, n["Sample calls"])
	// The tokens of a step's sequences are picked in one call.
	if n["Sample calls"] > passes+1 {
		t.Errorf("Sample: %d calls for %d tokens in %d passes, want one call per step", n["Sample calls"], tokens, passes)
	}
}

// testBackendCarriesStep: the optimizer's gradient norm and AdamW update
// (one per trainable tensor) reach the backend, with the CPU's bits.
func testBackendCarriesStep(t *testing.T) {
	c := testConfig("qwen2", false)
	rng := rand.New(rand.NewPCG(5, 5))
	b := testBatch(rng, c.VocabSize, []int{7, 4}, 7)
	targets := NextTokenTargets(b, nil)
	var params, moments [2][]float32
	var norms [2]float64
	cb := &countingBackend{Backend: cpu, n: map[string]int{}}
	for i := range 2 {
		m := newTestModel(t, c, 9)
		if i == 1 {
			m.be = cb
		}
		if _, _, err := m.ForwardCE(b, targets); err != nil {
			t.Fatal(err)
		}
		if err := m.BackwardCE(1); err != nil {
			t.Fatal(err)
		}
		table, p, _ := m.Trainable()
		opt := DefaultAdamW(len(p))
		norm, _, err := m.Step(opt, Schedule{Kind: "constant", LR: 1e-2})
		if err != nil {
			t.Fatal(err)
		}
		params[i], moments[i], norms[i] = slices.Clone(p), slices.Concat(opt.M, opt.V), norm
		if i == 1 && (cb.n["AdamWStep"] != len(table) || cb.n["GradNorm"] != 1) {
			t.Errorf("AdamWStep %d calls (want %d, one per tensor), GradNorm %d (want 1)", cb.n["AdamWStep"], len(table), cb.n["GradNorm"])
		}
	}
	if norms[0] != norms[1] || !bitsEqual(params[0], params[1]) || !bitsEqual(moments[0], moments[1]) {
		t.Errorf("the step differs between the CPU backend and the counting one (norms %v, %v)", norms[0], norms[1])
	}
}

// TestSamplerReleasesKVCaches: the sampler releases every KV cache it
// makes exactly once (a device cache's memory goes back then, not when
// the garbage collector finds it), uses none after, and still samples
// the CPU backend's tokens: sequences that stop early and are replaced
// (MaxBatch), a prompt shared by sequences that start in one pass (one
// snapshot kept) and by later ones (restored from it), and a Generate
// that ends early (its context cancelled at the first turn end, with
// caches and a snapshot still held).
func TestSamplerReleasesKVCaches(t *testing.T) {
	c := smpConfig("qwen2")
	ps := smpPrompts(4, 3, c.VocabSize, 5, 3, 7)
	prompts := [][]int32{ps[0], ps[0], ps[1], ps[0], ps[2], ps[1]}
	seeds := smpSeeds(len(prompts), 3)
	opt := SampleOptions{Temperature: 1, MaxNewTokens: 12, MaxBatch: 2, StopTokens: []int{3, 7}}
	t.Run("generate", func(t *testing.T) {
		want := generate(t, smpModel(t, c, 5, 8), prompts, seeds, opt)
		cb := &countingBackend{Backend: cpu, n: map[string]int{}}
		m := smpModel(t, c, 5, 8)
		m.be = cb
		got := generate(t, m, prompts, seeds, opt)
		for i := range want {
			if !slices.Equal(want[i].Tokens, got[i].Tokens) || !bitsEqual(want[i].Logprobs, got[i].Logprobs) {
				t.Errorf("sequence %d: CPU backend %v, counting backend %v", i, want[i].Tokens, got[i].Tokens)
			}
		}
		// 6 sequences and 2 snapshots (ps[0]'s, ps[1]'s) per layer.
		if n := cb.n["NewKVCache"]; n != 8*c.NumLayers {
			t.Errorf("NewKVCache: %d calls, want %d", n, 8*c.NumLayers)
		}
		cb.releasedOnce(t)
	})
	t.Run("cancelled", func(t *testing.T) {
		cb := &countingBackend{Backend: cpu, n: map[string]int{}}
		m := smpModel(t, c, 5, 8)
		m.be = cb
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := m.GenerateEpisodes(ctx, prompts, seeds, EpisodeOptions{SampleOptions: opt},
			func(TurnEnd) { cancel() }, make(chan Reply, len(prompts)))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GenerateEpisodes cancelled at the first turn end: %v, want context.Canceled", err)
		}
		if cb.n["NewKVCache"] == 0 {
			t.Fatal("no KV cache made")
		}
		cb.releasedOnce(t)
	})
}
