package trainer

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// TestSamplePaddedVocab: with VocabLimit below vocab_size (a padded
// embedding, as real Qwen2 checkpoints have), no sampled id is a padded
// one, at any temperature and truncation, while the same model without the
// limit does sample them; the logprobs are normalised over the real ids
// and equal ForwardLogp's bit for bit; a padded target is an error.
func TestSamplePaddedVocab(t *testing.T) {
	c := smpConfig("qwen2")
	c.VocabSize = 64
	const limit = 29 // smpConfig's vocabulary: 35 padded ids
	m := smpModel(t, c, 21, 6)
	prompts := smpPrompts(3, 16, limit, 3, 1, 6)
	seeds := smpSeeds(16, 77)
	opts := []SampleOptions{
		{Temperature: 1, MaxNewTokens: 24},
		{Temperature: 1.5, TopK: 40, MaxNewTokens: 24},
		{Temperature: 0.8, TopP: 0.99, MaxNewTokens: 24},
		{MaxNewTokens: 24},
	}
	padded := 0
	for _, opt := range opts {
		for _, s := range generate(t, m, prompts, seeds, opt) {
			for _, tok := range s.Tokens {
				if tok >= limit {
					padded++
				}
			}
		}
	}
	if padded == 0 {
		t.Fatalf("without VocabLimit no padded id was sampled: the test cannot tell masking from luck")
	}
	m.VocabLimit = limit
	for _, opt := range opts {
		out := generate(t, m, prompts, seeds, opt)
		for i, s := range out {
			for j, tok := range s.Tokens {
				if tok >= limit {
					t.Fatalf("%+v: sequence %d token %d is padded id %d (limit %d)", opt, i, j, tok, limit)
				}
			}
		}
		b, targets := concatBatch(prompts, out)
		temp := float32(max(opt.Temperature, 0))
		if temp == 0 {
			temp = 1
		}
		logp, _, err := m.ForwardLogp(b, targets, temp, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range prompts {
			for j, lp := range out[i].Logprobs {
				if ref := logp[i*b.T+len(p)-1+j]; math.Float32bits(lp) != math.Float32bits(ref) {
					t.Fatalf("%+v: sequence %d token %d: sampler logprob %v, ForwardLogp %v", opt, i, j, lp, ref)
				}
			}
		}
	}
	// normalised over the real ids: Σ_{v<limit} exp(log p(v)) = 1
	b := Batch{B: 1, T: 2, Lens: []int{2}, Tokens: []int32{5, 0}}
	var sum float64
	for v := range int32(limit) {
		b.Tokens[1] = v
		logp, _, err := m.ForwardLogp(b, NextTokenTargets(b, nil), 1, false)
		if err != nil {
			t.Fatal(err)
		}
		sum += math.Exp(float64(logp[0]))
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("Σ over the %d real ids of p = %v, want 1", limit, sum)
	}
	b.Tokens[1] = limit + 3
	if _, _, err := m.ForwardLogp(b, NextTokenTargets(b, nil), 1, false); err == nil || !strings.Contains(err.Error(), "padded id") {
		t.Errorf("padded target: err = %v, want a padded-id error", err)
	}
}

// TestLoadCheckpointVocabLimit: a checkpoint whose tokenizer has fewer
// tokens than vocab_size loads with VocabLimit = the tokenizer's size, by
// LoadCheckpoint and by LoadModel.
func TestLoadCheckpointVocabLimit(t *testing.T) {
	c := smpConfig("llama")
	c.VocabSize = 40
	m := smpModel(t, c, 1, 1)
	tok, err := tokenizer.NewChars("0123456")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "step=0")
	if err := SaveCheckpointAtomic(dir, &Checkpoint{Model: m, Tokenizer: tok}); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ck.Model.VocabLimit, tok.VocabSize(); got != want || want >= c.VocabSize {
		t.Errorf("VocabLimit = %d, want the tokenizer's %d (< vocab_size %d)", got, want, c.VocabSize)
	}
	// a reference model loaded alone normalises over the same ids
	ref, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ref.VocabLimit != tok.VocabSize() {
		t.Errorf("LoadModel: VocabLimit = %d, want %d", ref.VocabLimit, tok.VocabSize())
	}
}
