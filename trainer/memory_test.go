package trainer

import (
	"math/rand/v2"
	"testing"
)

// TestTrainMemoryMatchesArena: TrainMemory's activations are the arena
// Model.Reserve lays out (every layer's or, under recompute, one's), so the
// budget's per-sequence figure is what a stage allocates.
func TestTrainMemoryMatchesArena(t *testing.T) {
	c := testConfig("qwen2", true)
	for _, recompute := range []bool{false, true} {
		for _, B := range []int{1, 3} {
			m := newTestModel(t, c, 1)
			m.Recompute = recompute
			m.Reserve(B, 9)
			want := activationFloats(c, B, 9, m.headChunk(B*9), recompute)
			if got := len(m.acts.arena); got != want {
				t.Errorf("recompute %v, B %d: arena %d floats, estimate %d", recompute, B, got, want)
			}
			_, perSeq := TrainMemory(c, nil, 9, recompute)
			if one, two := activationFloats(c, 1, 9, 0, recompute), activationFloats(c, 2, 9, 0, recompute); perSeq != 4*uint64(two-one) {
				t.Errorf("recompute %v: perSeq %d bytes, want %d", recompute, perSeq, 4*(two-one))
			}
			m.Release()
		}
	}
}

// TestKeepLogitsMemory: a head that keeps a micro-batch's logits
// (HeadChunk = N) holds what KeepLogitsMemory adds to the default chunk's
// buffers, in the arena's own layout (activationFloats), and nothing more
// when N fits the default chunk.
func TestKeepLogitsMemory(t *testing.T) {
	c := testConfig("qwen2", true)
	c.VocabSize = 1 << 16 // the default chunk: 32 MiB / 4V = 128 rows
	ch := (&Model{Config: c}).headChunk(1 << 30)
	if ch != 128 {
		t.Fatalf("default chunk %d rows, want 128", ch)
	}
	for _, bt := range [][2]int{{3, 100}, {1, 128}, {2, 50}} {
		B, T := bt[0], bt[1]
		N := B * T
		want := 4 * uint64(activationFloats(c, B, T, N, false)-activationFloats(c, B, T, ch, false))
		if got := KeepLogitsMemory(c, N); got != want {
			t.Errorf("%d×%d: KeepLogitsMemory %d bytes, the arena grows by %d", B, T, got, want)
		}
	}
	if KeepLogitsMemory(c, 300) != 8*172*(1<<16) {
		t.Errorf("300 rows: %d bytes, want 8·172·V", KeepLogitsMemory(c, 300))
	}
}

// TestLoRAHeadStreamed: an fp32 model under LoRA holds no packed lm_head
// (its forward packs slices as it goes); a fully fine-tuned one does, and
// TrainMemory counts the difference.
func TestLoRAHeadStreamed(t *testing.T) {
	c := testConfig("qwen2", true)
	b := testBatch(rand.New(rand.NewPCG(2, 2)), c.VocabSize, []int{5, 3}, 5)
	targets := NextTokenTargets(b, nil)
	for _, lora := range []bool{false, true} {
		m := newTestModel(t, c, 4)
		var lc *LoRAConfig
		if lora {
			lo, err := NewLoRA(m, LoRAConfig{Rank: 2, Alpha: 4, Targets: LoRATargetNames}, 1, "", "")
			if err != nil {
				t.Fatal(err)
			}
			lc = &lo.Config
		}
		if _, _, err := m.ForwardLogp(b, targets, 1, false); err != nil {
			t.Fatal(err)
		}
		if packed := m.headPW != nil; packed == lora {
			t.Errorf("LoRA %v: packed lm_head held: %v", lora, packed)
		}
		fixed, _ := TrainMemory(c, lc, 5, false)
		fullFixed, _ := TrainMemory(c, nil, 5, false)
		if lora && fixed >= fullFixed-4*uint64(c.VocabSize*c.HiddenSize) {
			t.Errorf("LoRA fixed %d bytes, want less than full fine-tuning's %d less the packed head", fixed, fullFixed)
		}
		m.Release()
	}
}
