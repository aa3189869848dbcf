package trainer

import (
	"bytes"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// withBackend makes be the backend of the models made until the test ends.
func withBackend(t testing.TB, be Backend) {
	t.Helper()
	selected.Lock()
	old := selected.be
	selected.be = be
	selected.Unlock()
	t.Cleanup(func() {
		selected.Lock()
		selected.be = old
		selected.Unlock()
	})
}

// mirrorRun is what one run of the mirror test produced, compared bit for
// bit between the CPU backend and the mirror.
type mirrorRun struct {
	floats map[string][]float32
	tokens [][]int32
	ckpt   []byte
}

// runMirrorScenario trains m for three optimizer steps (two micro-batches
// of the RL loss, one SFT loss), then samples from it and writes its
// checkpoint, collecting every result the host reads.
func runMirrorScenario(t *testing.T, m *Model) mirrorRun {
	t.Helper()
	c := m.Config
	rng := rand.New(rand.NewPCG(3, 4))
	out := mirrorRun{floats: map[string][]float32{}}
	table, params, _ := m.Trainable()
	opt := DefaultAdamW(len(params))
	defer opt.Release()
	_ = table
	for step := range 3 {
		m.ZeroGrad()
		for mb := range 2 {
			b := testBatch(rng, c.VocabSize, []int{9, 4, 6}, 9) // T ≥ 8: the GPU's attention backward has the CPU's bits
			targets := NextTokenTargets(b, []int{2, 1, 3})
			logp, ent, err := m.ForwardLogp(b, targets, 0.9, mb == 0)
			if err != nil {
				t.Fatal(err)
			}
			out.floats[key("logp", step, mb)] = slices.Clone(logp)
			dlogp := make([]float32, len(logp))
			for i := range dlogp {
				dlogp[i] = float32(i%5) - 2
			}
			var dent []float32
			if ent != nil {
				out.floats[key("ent", step, mb)] = slices.Clone(ent)
				dent = make([]float32, len(ent))
				for i := range dent {
					dent[i] = 0.01 * float32(i%3)
				}
			}
			if err := m.BackwardLogp(dlogp, dent); err != nil {
				t.Fatal(err)
			}
		}
		b := testBatch(rng, c.VocabSize, []int{5, 9}, 9)
		loss, _, err := m.ForwardCE(b, NextTokenTargets(b, nil))
		if err != nil {
			t.Fatal(err)
		}
		out.floats[key("ce", step, 0)] = []float32{loss}
		if err := m.BackwardCE(0.5); err != nil {
			t.Fatal(err)
		}
		norm, _, err := m.Step(opt, Schedule{Kind: "constant", LR: 1e-2})
		if err != nil {
			t.Fatal(err)
		}
		out.floats[key("norm", step, 0)] = []float32{float32(norm)}
	}
	// Two slots for four sequences: the later ones of prompt {1, 2, 3}
	// restore its prefilled cache and logits, sampled beside a decode
	// step's rows.
	prompts := [][]int32{{1, 2, 3}, {4, 5}, {1, 2, 3}, {1, 2, 3}}
	samples, err := m.Generate(prompts, []uint64{1, 2, 3, 4}, SampleOptions{Temperature: 1, MaxNewTokens: 6, MaxBatch: 2, StopTokens: []int{3, 7}})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		out.tokens = append(out.tokens, s.Tokens)
		out.floats[key("sample logp", i, 0)] = s.Logprobs
	}
	_, _, grads := m.Trainable()
	out.floats["grads after step"] = slices.Clone(m.host(grads))
	var buf bytes.Buffer
	ck := &Checkpoint{Model: m, Opt: opt}
	if err := ck.WriteFiles(func(name string, write func(io.Writer) error) error {
		buf.WriteString(name)
		return write(&buf)
	}); err != nil {
		t.Fatal(err)
	}
	out.ckpt = buf.Bytes()
	return out
}

func key(what string, i, j int) string { return what + string(rune('0'+i)) + string(rune('0'+j)) }

// TestMirrorBackendSameBits runs the same training, sampling and
// checkpoint on the CPU backend and on the mirror backend (every kept
// buffer computed on a second copy, stale host elements NaN): the model
// keeps the residency rules when every result is the CPU's, bit for bit
// (fp32 and bf16, recomputed layers with a chunked head, LoRA).
func TestMirrorBackendSameBits(t *testing.T) {
	sameBitsOn(t, cpu, MirrorBackend, "the mirror backend")
}

// residencyCases are the models of the residency tests.
var residencyCases = []struct {
	name      string
	dtype     string
	recompute bool
	chunk     int
	lora      bool
}{
	{"fp32", DTypeFP32, false, 0, false},
	{"fp32/recompute/chunked", DTypeFP32, true, 3, false},
	{"bf16/chunked", DTypeBF16, false, 3, false},
	{"lora", DTypeFP32, false, 0, true},
	{"lora/bf16", DTypeBF16, false, 0, true},
}

// sameBitsOn runs runMirrorScenario for every residencyCases model on ref
// and on the backend second() returns (called once the first run is
// done), and fails unless every result is ref's, bit for bit.
func sameBitsOn(t *testing.T, ref Backend, second func() Backend, what string) {
	for _, tc := range residencyCases {
		t.Run(tc.name, func(t *testing.T) {
			var runs [2]mirrorRun
			for i := range 2 {
				be := ref
				if i == 1 {
					be = second()
				}
				withBackend(t, be)
				m := newTestModel(t, testConfig("qwen2", false), 9)
				m.Recompute, m.HeadChunk = tc.recompute, tc.chunk
				if err := m.SetDType(tc.dtype); err != nil {
					t.Fatal(err)
				}
				if tc.lora {
					if _, err := NewLoRA(m, LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{"q", "v", "down"}}, 5, "base", ""); err != nil {
						t.Fatal(err)
					}
					lo := m.LoRA
					for i := range lo.Params { // B = 0 would hide the adapters' forward
						lo.Params[i] += 0.05 * float32(i%7-3)
					}
					m.be.FromHost(lo.Params)
				}
				runs[i] = runMirrorScenario(t, m)
				m.Release()
			}
			for k, want := range runs[0].floats {
				if got := runs[1].floats[k]; !bitsEqual(got, want) {
					t.Errorf("%s differs on %s:\n got %v\nwant %v", k, what, got, want)
				}
			}
			if !slices.EqualFunc(runs[0].tokens, runs[1].tokens, slices.Equal) {
				t.Errorf("sampled tokens differ: %s %v, reference %v", what, runs[1].tokens, runs[0].tokens)
			}
			if !bytes.Equal(runs[0].ckpt, runs[1].ckpt) {
				t.Errorf("checkpoint bytes differ (%d and %d bytes)", len(runs[1].ckpt), len(runs[0].ckpt))
			}
		})
	}
}

// TestMirrorBackendEpisodes: multi-turn episodes (observations fed back
// between turns, a shared prompt, three slots, replies late) sample the
// CPU backend's tokens and log-prob bits on the mirror backend.
func TestMirrorBackendEpisodes(t *testing.T) {
	c := smpConfig("qwen2")
	c.MaxPositionEmbeddings = 120
	prompts := smpPrompts(4, 7, c.VocabSize, 3, 1, 6)
	prompts[5] = slices.Clone(prompts[0])
	seeds := smpSeeds(7, 30)
	opt := EpisodeOptions{SampleOptions: SampleOptions{Temperature: 0.9, MaxNewTokens: 40, StopTokens: []int{2}, MaxBatch: 3}, MaxTurnTokens: 8}
	var eps [2][]Episode
	for i, be := range []Backend{cpu, MirrorBackend()} {
		withBackend(t, be)
		m := smpModel(t, c, 5, 8)
		eps[i] = runEpisodes(t, m, prompts, seeds, opt, true)
		m.Release()
	}
	sameEpisodes(t, "mirror backend", eps[1], eps[0])
}
