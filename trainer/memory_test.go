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
