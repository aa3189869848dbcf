package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// smpConfig is the sampler tests' tiny model: 2 layers, hidden 32, GQA
// (4 heads, 2 kv heads), vocab 29.
func smpConfig(modelType string) Config {
	return Config{
		ModelType: modelType, HiddenSize: 32, IntermediateSize: 64, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, VocabSize: 29, MaxPositionEmbeddings: 64,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: modelType == "llama",
		QKVBias: modelType == "qwen2",
	}
}

// smpModel is NewModel(c, seed) with every matrix and bias scaled by
// scale (NewModel's std 0.02 gives nearly uniform next-token
// distributions; ×15 makes them peaked, so greedy, top-k and top-p are
// tested on distinct choices).
// smpLoRA attaches rank-4 adapters on every target to m, every adapter
// weight set to 0.2·sin(i) so that the adapters change the outputs.
func smpLoRA(t testing.TB, m *Model) {
	t.Helper()
	lo, err := NewLoRA(m, LoRAConfig{Rank: 4, Alpha: 8, Targets: LoRATargetNames}, 3, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range lo.Params {
		lo.Params[i] = float32(0.2 * math.Sin(float64(i)))
	}
}

func smpModel(t testing.TB, c Config, seed uint64, scale float32) *Model {
	t.Helper()
	m, err := NewModel(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range m.Table {
		if strings.HasSuffix(tn.Name, "layernorm.weight") || tn.Name == "model.norm.weight" {
			continue
		}
		for i := tn.Offset; i < tn.Offset+tn.Size; i++ {
			m.Params[i] *= scale
		}
	}
	return m
}

// smpPrompts returns n random prompts with lengths cycling through lens.
func smpPrompts(seed uint64, n, vocab int, lens ...int) [][]int32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	ps := make([][]int32, n)
	for i := range ps {
		ps[i] = make([]int32, lens[i%len(lens)])
		for j := range ps[i] {
			ps[i][j] = int32(rng.IntN(vocab))
		}
	}
	return ps
}

func smpSeeds(n int, base uint64) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = base + uint64(i)*7919
	}
	return s
}

func generate(t testing.TB, m *Model, prompts [][]int32, seeds []uint64, opt SampleOptions) []Sample {
	t.Helper()
	out, err := m.Generate(prompts, seeds, opt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// concatBatch builds the right-padded batch prompt+completion and the
// targets that score exactly the completion tokens.
func concatBatch(prompts [][]int32, samples []Sample) (Batch, []int32) {
	T := 0
	for i := range prompts {
		T = max(T, len(prompts[i])+len(samples[i].Tokens))
	}
	b := Batch{B: len(prompts), T: T, Lens: make([]int, len(prompts)), Tokens: make([]int32, len(prompts)*T)}
	start := make([]int, len(prompts))
	for i, p := range prompts {
		n := copy(b.Tokens[i*T:], p)
		n += copy(b.Tokens[i*T+n:], samples[i].Tokens)
		b.Lens[i], start[i] = n, len(p)
	}
	return b, NextTokenTargets(b, start)
}

// sameSamples requires identical tokens, finish reasons and logprob bits.
func sameSamples(t *testing.T, what string, got, want []Sample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !slices.Equal(g.Tokens, w.Tokens) || g.FinishReason != w.FinishReason {
			t.Fatalf("%s: sample %d = %v (%s), want %v (%s)", what, i, g.Tokens, g.FinishReason, w.Tokens, w.FinishReason)
		}
		for j := range w.Logprobs {
			if math.Float32bits(g.Logprobs[j]) != math.Float32bits(w.Logprobs[j]) {
				t.Fatalf("%s: sample %d token %d logprob %v, want %v (bits differ)", what, i, j, g.Logprobs[j], w.Logprobs[j])
			}
		}
	}
}

// TestSampleGreedyMatchesForward: at temperature 0 each token is the
// argmax of Model.Forward's logits at the last position of
// prompt+completion so far, and its logprob is log softmax(logits) there
// (temperature 1), bit for bit (the KV-cache decode and the full forward
// compute the same logits).
func TestSampleGreedyMatchesForward(t *testing.T) {
	for _, mt := range []string{"llama", "qwen2"} {
		t.Run(mt, func(t *testing.T) {
			c := smpConfig(mt)
			m := smpModel(t, c, 11, 8)
			prompts := smpPrompts(1, 5, c.VocabSize, 1, 4, 9, 2, 13)
			out := generate(t, m, prompts, smpSeeds(5, 1), SampleOptions{MaxNewTokens: 12})
			V := c.VocabSize
			for i, p := range prompts {
				if len(out[i].Tokens) != 12 || out[i].FinishReason != FinishLength {
					t.Fatalf("sequence %d: %d tokens, finish %q; want 12, length", i, len(out[i].Tokens), out[i].FinishReason)
				}
				seq := slices.Clone(p)
				for j, tok := range out[i].Tokens {
					b := Batch{B: 1, T: len(seq), Lens: []int{len(seq)}, Tokens: seq}
					logits, err := m.Forward(b)
					if err != nil {
						t.Fatal(err)
					}
					row := logits[(len(seq)-1)*V : len(seq)*V]
					if want := int32(kernels.Argmax(row)); tok != want {
						t.Fatalf("sequence %d step %d: greedy token %d, argmax of Forward %d", i, j, tok, want)
					}
					lsm := make([]float32, V)
					kernels.LogSoftmax(lsm, row, 1, V, 1)
					if math.Float32bits(out[i].Logprobs[j]) != math.Float32bits(lsm[tok]) {
						t.Fatalf("sequence %d step %d: logprob %v, log softmax %v", i, j, out[i].Logprobs[j], lsm[tok])
					}
					seq = append(seq, tok)
				}
			}
		})
	}
}

// TestSampleLogprobsMatchForwardLogp is the on-policy check: the logprobs
// the sampler returns equal Model.ForwardLogp at the same temperature on
// prompt+completion, per token, bit for bit (so the PPO ratio of the first
// update is exactly 1), whatever top-k/top-p truncated the sampling, for
// completions of up to 180 tokens.
func TestSampleLogprobsMatchForwardLogp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mt    string
		opt   SampleOptions
		lora  bool // with LoRA adapters on every target (B ≠ 0)
		chunk int  // HeadChunk
	}{
		{"T1 lora", "llama", SampleOptions{Temperature: 1, MaxNewTokens: 40}, true, 7},
		{"T0.7 lora qwen2", "qwen2", SampleOptions{Temperature: 0.7, TopK: 5, MaxNewTokens: 40}, true, 0},
		{"T1", "llama", SampleOptions{Temperature: 1, MaxNewTokens: 20}, false, 0},
		{"T0.7 topk5", "qwen2", SampleOptions{Temperature: 0.7, TopK: 5, MaxNewTokens: 20}, false, 0},
		{"T1.3 topp0.8", "llama", SampleOptions{Temperature: 1.3, TopP: 0.8, MaxNewTokens: 20}, false, 0},
		{"T0.6 topk8 topp0.9", "qwen2", SampleOptions{Temperature: 0.6, TopK: 8, TopP: 0.9, MaxNewTokens: 20}, false, 0},
		{"greedy at T1", "llama", SampleOptions{MaxNewTokens: 20}, false, 0},
		{"T1 long", "llama", SampleOptions{Temperature: 1, MaxNewTokens: 180}, false, 0},
		{"T0.7 long", "qwen2", SampleOptions{Temperature: 0.7, MaxNewTokens: 180}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smpConfig(tc.mt)
			c.MaxPositionEmbeddings = 200
			// ×8: logits up to ~±20
			m := smpModel(t, c, 5, 8)
			m.HeadChunk = tc.chunk
			if tc.lora {
				smpLoRA(t, m)
			}
			prompts := smpPrompts(2, 8, c.VocabSize, 3, 1, 7, 12)
			out := generate(t, m, prompts, smpSeeds(8, 100), tc.opt)
			b, targets := concatBatch(prompts, out)
			temp := float32(tc.opt.Temperature)
			if temp == 0 {
				temp = 1
			}
			for _, entropy := range []bool{false, true} { // train computes the entropy too
				logp, _, err := m.ForwardLogp(b, targets, temp, entropy)
				if err != nil {
					t.Fatal(err)
				}
				for i, p := range prompts {
					for j, lp := range out[i].Logprobs {
						ref := logp[i*b.T+len(p)-1+j]
						if math.Float32bits(lp) != math.Float32bits(ref) {
							t.Fatalf("entropy %v: sequence %d token %d: sampler logprob %v, ForwardLogp %v", entropy, i, j, lp, ref)
						}
					}
				}
			}
		})
	}
}

// TestSampleTruncationEqualsGreedy: top-k = 1 and a tiny top-p keep only
// the most probable token, so they sample the greedy tokens at any
// temperature; top-k = 1 at temperature 1 reports the greedy logprobs
// (both are log softmax(z) of the same token: truncation does not enter).
func TestSampleTruncationEqualsGreedy(t *testing.T) {
	c := smpConfig("llama")
	m := smpModel(t, c, 21, 15)
	prompts := smpPrompts(4, 6, c.VocabSize, 2, 5, 8)
	seeds := smpSeeds(6, 9)
	greedy := generate(t, m, prompts, seeds, SampleOptions{MaxNewTokens: 16})
	for _, tc := range []struct {
		name     string
		opt      SampleOptions
		sameLogp bool
	}{
		{"topk1 T1", SampleOptions{Temperature: 1, TopK: 1, MaxNewTokens: 16}, true},
		{"topk1 T2", SampleOptions{Temperature: 2, TopK: 1, MaxNewTokens: 16}, false},
		{"topp1e-6 T1", SampleOptions{Temperature: 1, TopP: 1e-6, MaxNewTokens: 16}, true},
		{"topp1e-3 T0.5", SampleOptions{Temperature: 0.5, TopP: 1e-3, MaxNewTokens: 16}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := generate(t, m, prompts, seeds, tc.opt)
			for i := range out {
				if !slices.Equal(out[i].Tokens, greedy[i].Tokens) {
					t.Fatalf("sequence %d: %v, greedy %v", i, out[i].Tokens, greedy[i].Tokens)
				}
			}
			if tc.sameLogp {
				sameSamples(t, tc.name, out, greedy)
			}
		})
	}
}

// TestSampleDistribution draws the first token of one prompt under 6000
// seeds and compares the counts with the expected distribution — softmax of
// Model.Forward's logits at temperature T, truncated and renormalised by
// top-k/top-p — with a chi-square statistic (categories with expected
// count < 5 pooled) against the loose bound df + 6·sqrt(2·df) (a true
// distribution exceeds it with probability ~1e-6); tokens outside the
// truncated support must never appear.
func TestSampleDistribution(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 6000 samples per case")
	}
	c := smpConfig("qwen2")
	m := smpModel(t, c, 8, 4) // ×4: spread over many tokens
	prompt := []int32{3, 14, 15, 9, 2}
	V := c.VocabSize
	logits, err := m.Forward(Batch{B: 1, T: len(prompt), Lens: []int{len(prompt)}, Tokens: prompt})
	if err != nil {
		t.Fatal(err)
	}
	last := slices.Clone(logits[(len(prompt)-1)*V:])
	const n = 6000
	prompts := make([][]int32, n)
	for i := range prompts {
		prompts[i] = prompt
	}
	for _, tc := range []struct {
		name string
		opt  SampleOptions
	}{
		{"T1", SampleOptions{Temperature: 1, MaxNewTokens: 1}},
		{"T0.7 topk6", SampleOptions{Temperature: 0.7, TopK: 6, MaxNewTokens: 1}},
		{"T1.5 topp0.7", SampleOptions{Temperature: 1.5, TopP: 0.7, MaxNewTokens: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := expectedDist(last, tc.opt)
			out := generate(t, m, prompts, smpSeeds(n, 12345), tc.opt)
			counts := make([]float64, V)
			for _, s := range out {
				tok := s.Tokens[0]
				if want[tok] == 0 {
					t.Fatalf("token %d sampled outside the truncated support", tok)
				}
				counts[tok]++
			}
			var chi2, poolObs, poolExp float64
			df := -1
			for v := range V {
				e := want[v] * n
				if e == 0 {
					continue
				}
				if e < 5 {
					poolObs += counts[v]
					poolExp += e
					continue
				}
				chi2 += (counts[v] - e) * (counts[v] - e) / e
				df++
			}
			if poolExp > 0 {
				chi2 += (poolObs - poolExp) * (poolObs - poolExp) / poolExp
				df++
			}
			bound := float64(df) + 6*math.Sqrt(2*float64(max(df, 1)))
			t.Logf("chi2 = %.1f, df = %d, bound %.1f", chi2, df, bound)
			if df < 1 || chi2 > bound {
				t.Errorf("chi2 = %.1f with df = %d exceeds %.1f", chi2, df, bound)
			}
		})
	}
}

// expectedDist is the sampling distribution of pick, written out
// independently in float64: softmax(z/T), top-k, then top-p on the
// renormalised top-k mass (the token crossing top-p included).
func expectedDist(z []float32, opt SampleOptions) []float64 {
	V := len(z)
	p := make([]float64, V)
	mx := math.Inf(-1)
	for _, x := range z {
		mx = max(mx, float64(x)/opt.Temperature)
	}
	for v, x := range z {
		p[v] = math.Exp(float64(x)/opt.Temperature - mx)
	}
	idx := make([]int, V)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case p[a] > p[b]:
			return -1
		case p[a] < p[b]:
			return 1
		}
		return 0
	})
	k := V
	if opt.TopK > 0 {
		k = min(V, opt.TopK)
	}
	var mass float64
	for _, v := range idx[:k] {
		mass += p[v]
	}
	if opt.TopP > 0 && opt.TopP < 1 {
		var cum float64
		n := 0
		for n < k && (n == 0 || cum < opt.TopP*mass) {
			cum += p[idx[n]]
			n++
		}
		k, mass = n, cum
	}
	out := make([]float64, V)
	for _, v := range idx[:k] {
		out[v] = p[v] / mass
	}
	return out
}

// TestSampleStop covers the finish conditions: a stop token (included,
// "stop"), stop strings spanning tokens (cut after the token completing
// the string, "stop"), max new tokens and the context length ("length").
func TestSampleStop(t *testing.T) {
	c := smpConfig("llama")
	m := smpModel(t, c, 31, 15)
	prompts := smpPrompts(6, 4, c.VocabSize, 3, 6)
	seeds := smpSeeds(4, 77)
	base := SampleOptions{Temperature: 1, MaxNewTokens: 24}
	ref := generate(t, m, prompts, seeds, base)
	// Decode: token v is the two letters "a"+v/5, "f"+v%5 ... distinct
	// enough, and a stop string can span two tokens.
	decode := func(ids []int) string {
		var sb strings.Builder
		for _, v := range ids {
			sb.WriteByte(byte('a' + v/5))
			sb.WriteByte(byte('A' + v%5))
		}
		return sb.String()
	}
	toInts := func(x []int32) []int {
		o := make([]int, len(x))
		for i, v := range x {
			o[i] = int(v)
		}
		return o
	}

	t.Run("stop token", func(t *testing.T) {
		for i := range prompts {
			stop := int(ref[i].Tokens[5])
			opt := base
			opt.StopTokens = []int{stop}
			out := generate(t, m, prompts[i:i+1], seeds[i:i+1], opt)[0]
			first := slices.Index(ref[i].Tokens, int32(stop))
			sameSamples(t, "stop token", []Sample{out}, []Sample{{Tokens: ref[i].Tokens[:first+1], Logprobs: ref[i].Logprobs[:first+1], FinishReason: FinishStop}})
		}
	})
	t.Run("stop string", func(t *testing.T) {
		for i := range prompts {
			full := decode(toInts(ref[i].Tokens))
			stop := full[9:13] // tail of token 4, token 5, head of token 6
			opt := base
			opt.StopStrings = []string{"zzzz", stop}
			opt.Decode = decode
			out := generate(t, m, prompts[i:i+1], seeds[i:i+1], opt)[0]
			// the first token count whose decoding contains stop
			n := 1
			for !strings.Contains(decode(toInts(ref[i].Tokens[:n])), stop) {
				n++
			}
			sameSamples(t, "stop string", []Sample{out}, []Sample{{Tokens: ref[i].Tokens[:n], Logprobs: ref[i].Logprobs[:n], FinishReason: FinishStop}})
			if n > 7 {
				t.Fatalf("sequence %d: stop string %q found only after %d tokens", i, stop, n)
			}
		}
	})
	t.Run("max new tokens", func(t *testing.T) {
		opt := base
		opt.MaxNewTokens = 7
		out := generate(t, m, prompts, seeds, opt)
		for i := range out {
			sameSamples(t, "max new tokens", out[i:i+1], []Sample{{Tokens: ref[i].Tokens[:7], Logprobs: ref[i].Logprobs[:7], FinishReason: FinishLength}})
		}
	})
	t.Run("context length", func(t *testing.T) {
		long := smpPrompts(7, 2, c.VocabSize, c.MaxPositionEmbeddings-3, 1)
		out := generate(t, m, long, seeds[:2], base)
		if len(out[0].Tokens) != 3 || out[0].FinishReason != FinishLength {
			t.Fatalf("prompt of %d tokens: %d new tokens (%s), want 3 (length)", len(long[0]), len(out[0].Tokens), out[0].FinishReason)
		}
		if len(out[1].Tokens) != base.MaxNewTokens {
			t.Fatalf("short prompt beside it: %d tokens, want %d", len(out[1].Tokens), base.MaxNewTokens)
		}
	})
}

// TestSampleDeterminism: a prompt and its seed give the same tokens and
// the same logprob bits alone, in a batch of 32 of mixed lengths, in the
// reversed batch, and with GOMAXPROCS 1, 2, 3 or 8; a different seed gives a
// different completion.
func TestSampleDeterminism(t *testing.T) {
	cases := []struct {
		name  string
		c     Config
		scale float32
		n     int
		short bool // runs under -short
	}{
		{"tiny", smpConfig("qwen2"), 15, 32, true},
		// Hidden 256: a model past every kernel's small-size paths.
		{"hidden256", Config{ModelType: "llama", HiddenSize: 256, IntermediateSize: 704, NumLayers: 2,
			NumHeads: 8, NumKVHeads: 8, VocabSize: 512, MaxPositionEmbeddings: 128,
			RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true}, 3, 16, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && !tc.short {
				t.Skip("-short: hidden-256 model")
			}
			m := smpModel(t, tc.c, 3, tc.scale)
			prompts := smpPrompts(8, tc.n, tc.c.VocabSize, 1, 7, 3, 12, 5)
			seeds := smpSeeds(tc.n, 1000)
			opt := SampleOptions{Temperature: 1, TopP: 0.95, MaxNewTokens: 24, StopTokens: []int{0}}
			batch := generate(t, m, prompts, seeds, opt)
			for _, i := range []int{0, 1, 2, 3, tc.n - 1} {
				alone := generate(t, m, prompts[i:i+1], seeds[i:i+1], opt)
				sameSamples(t, "alone vs batch", alone, batch[i:i+1])
			}
			rp, rs := slices.Clone(prompts), slices.Clone(seeds)
			slices.Reverse(rp)
			slices.Reverse(rs)
			rev := generate(t, m, rp, rs, opt)
			slices.Reverse(rev)
			sameSamples(t, "reversed batch", rev, batch)
			for _, procs := range []int{1, 2, 3, 8} {
				old := runtime.GOMAXPROCS(procs)
				again := generate(t, m, prompts, seeds, opt)
				runtime.GOMAXPROCS(old)
				sameSamples(t, "GOMAXPROCS", again, batch)
			}
			other := generate(t, m, prompts[:1], []uint64{seeds[0] + 1}, opt)
			if slices.Equal(other[0].Tokens, batch[0].Tokens) {
				t.Errorf("seeds %d and %d gave the same completion %v", seeds[0], seeds[0]+1, other[0].Tokens)
			}
		})
	}
}

// TestSampleGroups: GRPO-style groups (each prompt repeated with distinct
// seeds) share one prefill; every member still equals its own run alone.
func TestSampleGroups(t *testing.T) {
	c := smpConfig("llama")
	m := smpModel(t, c, 12, 15)
	uniq := smpPrompts(10, 4, c.VocabSize, 5, 2, 9, 1)
	var prompts [][]int32
	for range 4 {
		for _, p := range uniq {
			prompts = append(prompts, slices.Clone(p)) // equal, not aliased
		}
	}
	seeds := smpSeeds(len(prompts), 31)
	opt := SampleOptions{Temperature: 0.9, TopK: 10, MaxNewTokens: 10}
	batch := generate(t, m, prompts, seeds, opt)
	distinct := map[string]bool{}
	for i := range prompts {
		alone := generate(t, m, prompts[i:i+1], seeds[i:i+1], opt)
		sameSamples(t, "group member alone vs batch", alone, batch[i:i+1])
		distinct[fmt.Sprint(batch[i].Tokens)] = true
	}
	if len(distinct) < len(prompts)/2 {
		t.Errorf("only %d distinct completions for %d samples", len(distinct), len(prompts))
	}
}

// TestSampleKVCacheMatchesNoCache: with the same seeds at temperature 1,
// the KV-cache sampler and its no-cache twin (full Model.Forward per
// token) choose the same tokens, with the same logprob bits.
func TestSampleKVCacheMatchesNoCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mt     string
		maxPos int
		opt    SampleOptions
	}{
		{"llama T1", "llama", 64, SampleOptions{Temperature: 1, MaxNewTokens: 20}},
		{"qwen2 T1 topk7 stop", "qwen2", 64, SampleOptions{Temperature: 1, TopK: 7, MaxNewTokens: 20, StopTokens: []int{4}}},
		// past kvInitialExtra new tokens: the caches grow (twice)
		{"llama T1 cache growth", "llama", 200, SampleOptions{Temperature: 1, MaxNewTokens: 150}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smpConfig(tc.mt)
			c.MaxPositionEmbeddings = tc.maxPos
			m := smpModel(t, c, 41, 8) // ×8 as in TestSampleLogprobsMatchForwardLogp
			prompts := smpPrompts(9, 10, c.VocabSize, 1, 6, 2, 11)
			seeds := smpSeeds(10, 5)
			kv := generate(t, m, prompts, seeds, tc.opt)
			nc, err := m.GenerateNoCache(prompts, seeds, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i := range kv {
				if !slices.Equal(kv[i].Tokens, nc[i].Tokens) || kv[i].FinishReason != nc[i].FinishReason {
					t.Fatalf("sequence %d: cache %v (%s), no cache %v (%s)", i, kv[i].Tokens, kv[i].FinishReason, nc[i].Tokens, nc[i].FinishReason)
				}
				for j := range kv[i].Logprobs {
					d := math.Abs(float64(kv[i].Logprobs[j] - nc[i].Logprobs[j]))
					worst = max(worst, d)
					if math.Float32bits(kv[i].Logprobs[j]) != math.Float32bits(nc[i].Logprobs[j]) {
						t.Fatalf("sequence %d token %d: logprob %v with cache, %v without", i, j, kv[i].Logprobs[j], nc[i].Logprobs[j])
					}
				}
			}
			t.Logf("max |cache − no cache| logprob = %.2g", worst)
		})
	}
}

// TestSampleEmptyBatch: no prompts, no samples, no error.
func TestSampleEmptyBatch(t *testing.T) {
	m := smpModel(t, smpConfig("llama"), 1, 1)
	for _, gen := range []func([][]int32, []uint64, SampleOptions) ([]Sample, error){m.Generate, m.GenerateNoCache} {
		out, err := gen(nil, nil, SampleOptions{MaxNewTokens: 3})
		if err != nil || len(out) != 0 {
			t.Fatalf("got %v, %v; want no samples and no error", out, err)
		}
	}
}

// TestSampleErrors: invalid options and prompts are errors naming the
// problem.
func TestSampleErrors(t *testing.T) {
	c := smpConfig("llama")
	m := smpModel(t, c, 1, 1)
	ok := [][]int32{{1, 2}}
	seeds := []uint64{1}
	long := make([]int32, c.MaxPositionEmbeddings)
	for _, tc := range []struct {
		name    string
		prompts [][]int32
		seeds   []uint64
		opt     SampleOptions
		want    string
	}{
		{"negative temperature", ok, seeds, SampleOptions{Temperature: -1, MaxNewTokens: 1}, "temperature"},
		{"NaN temperature", ok, seeds, SampleOptions{Temperature: math.NaN(), MaxNewTokens: 1}, "temperature"},
		{"tiny temperature", ok, seeds, SampleOptions{Temperature: 1e-9, MaxNewTokens: 1}, "greedy"},
		{"negative top-k", ok, seeds, SampleOptions{TopK: -1, MaxNewTokens: 1}, "top_k"},
		{"top-p above 1", ok, seeds, SampleOptions{TopP: 1.5, MaxNewTokens: 1}, "top_p"},
		{"no max new tokens", ok, seeds, SampleOptions{}, "max new tokens"},
		{"stop strings without decode", ok, seeds, SampleOptions{MaxNewTokens: 1, StopStrings: []string{"x"}}, "Decode"},
		{"empty stop string", ok, seeds, SampleOptions{MaxNewTokens: 1, StopStrings: []string{""}, Decode: func([]int) string { return "" }}, "empty stop"},
		{"stop token out of range", ok, seeds, SampleOptions{MaxNewTokens: 1, StopTokens: []int{c.VocabSize}}, "stop token"},
		{"seed count", ok, []uint64{1, 2}, SampleOptions{MaxNewTokens: 1}, "2 seeds for 1 prompts"},
		{"empty prompt", [][]int32{{}}, seeds, SampleOptions{MaxNewTokens: 1}, "prompt 0 is empty"},
		{"token out of range", [][]int32{{1, int32(c.VocabSize)}}, seeds, SampleOptions{MaxNewTokens: 1}, "position 1: token"},
		{"prompt fills the context", [][]int32{long}, seeds, SampleOptions{MaxNewTokens: 1}, "no room"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, gen := range []func([][]int32, []uint64, SampleOptions) ([]Sample, error){m.Generate, m.GenerateNoCache} {
				_, err := gen(tc.prompts, tc.seeds, tc.opt)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one containing %q", err, tc.want)
				}
			}
		})
	}
}

// TestSampleRefill: with at most 1, 5 or 32 sequences at once (finished
// slots refilled from the queue), on 1 or 2 threads, and with the prompts
// reversed, Generate returns the same bytes as with every sequence at once,
// over GRPO-style groups and stop tokens that end sequences at different
// steps.
func TestSampleRefill(t *testing.T) {
	c := smpConfig("qwen2")
	m := smpModel(t, c, 31, 10)
	uniq := smpPrompts(12, 7, c.VocabSize, 4, 1, 9, 2)
	var prompts [][]int32
	for i := range 40 {
		prompts = append(prompts, uniq[i%len(uniq)])
	}
	seeds := smpSeeds(len(prompts), 300)
	opt := SampleOptions{Temperature: 1, MaxNewTokens: 30, StopTokens: []int{3, 7}}
	all := generate(t, m, prompts, seeds, opt)
	lens := map[int]bool{}
	for _, s := range all {
		lens[len(s.Tokens)] = true
	}
	if len(lens) < 3 {
		t.Fatalf("completion lengths %v: want sequences ending at different steps", lens)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for _, mb := range []int{1, 5, 32} {
			o := opt
			o.MaxBatch = mb
			sameSamples(t, fmt.Sprintf("MaxBatch %d, %d threads", mb, procs), generate(t, m, prompts, seeds, o), all)
			rp, rs := slices.Clone(prompts), slices.Clone(seeds)
			slices.Reverse(rp)
			slices.Reverse(rs)
			rev := generate(t, m, rp, rs, o)
			slices.Reverse(rev)
			sameSamples(t, fmt.Sprintf("reversed, MaxBatch %d, %d threads", mb, procs), rev, all)
		}
	}
}
