package trainer

import (
	"math/rand/v2"
	"testing"

	"github.com/rljob/rljob/kernels"
)

func (c *countingBackend) PackWeightBF16(pw *kernels.PackedWeightBF16, weight []float32, N, K int) *kernels.PackedWeightBF16 {
	c.n["PackWeightBF16"]++
	return c.Backend.PackWeightBF16(pw, weight, N, K)
}

// TestWeightsPackedOncePerChange: the forward packs the weights it
// multiplies by (lm_head in fp32; every matrix in bf16) when they have
// changed, not at every call: two forwards in a row pack once; Step,
// Trainable, Tensor, WeightsChanged and SetDType make the next forward
// pack again. Under LoRA the frozen base's bf16 forms are packed once
// across optimizer steps. (That the repacked weights are the new ones is
// what the golden training digests check, TestTrainBytesAcrossKernelSets.)
func TestWeightsPackedOncePerChange(t *testing.T) {
	c := smpConfig("qwen2")
	b := testBatch(rand.New(rand.NewPCG(1, 2)), c.VocabSize, []int{12, 9}, 12)
	targets := NextTokenTargets(b, nil)
	perPack := map[string]int{DTypeFP32: 1, DTypeBF16: 7*c.NumLayers + 1}
	counter := map[string]string{DTypeFP32: "PackWeight", DTypeBF16: "PackWeightBF16"}
	sched := Schedule{Kind: "constant", LR: 1e-3}
	for _, dt := range []string{DTypeFP32, DTypeBF16} {
		t.Run(dt, func(t *testing.T) {
			m := newTestModel(t, c, 3)
			if err := m.SetDType(dt); err != nil {
				t.Fatal(err)
			}
			cb := &countingBackend{Backend: m.be, n: map[string]int{}}
			m.be = cb
			packs := func(what string, f func(), want int) {
				t.Helper()
				before := cb.n[counter[dt]]
				f()
				if got := (cb.n[counter[dt]] - before) / perPack[dt]; got != want || (cb.n[counter[dt]]-before)%perPack[dt] != 0 {
					t.Errorf("%s: %d packing calls, want %d model packings of %d calls", what, cb.n[counter[dt]]-before, want, perPack[dt])
				}
			}
			fwd := func() {
				if _, _, err := m.ForwardLogp(b, targets, 1, false); err != nil {
					t.Fatal(err)
				}
			}
			o := DefaultAdamW(len(m.Params))
			packs("first forward", fwd, 1)
			packs("second forward", fwd, 0)
			packs("forward after Step", func() { sftStep(t, m, o, sched, b, targets); fwd() }, 1)
			packs("forward after Tensor", func() { m.Tensor("model.norm.weight"); fwd() }, 1)
			packs("forward after WeightsChanged", func() { m.WeightsChanged(); fwd() }, 1)
			packs("forward after SetDType", func() { m.SetDType(dt); fwd() }, 1)
			packs("third forward", fwd, 0)
		})
	}
	t.Run("lora-bf16", func(t *testing.T) {
		m := newTestModel(t, c, 3)
		if err := m.SetDType(DTypeBF16); err != nil {
			t.Fatal(err)
		}
		if _, err := NewLoRA(m, LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{"q_proj", "v_proj"}}, 1, "", ""); err != nil {
			t.Fatal(err)
		}
		cb := &countingBackend{Backend: m.be, n: map[string]int{}}
		m.be = cb
		o := DefaultAdamW(len(m.LoRA.Params))
		for range 3 {
			sftStep(t, m, o, sched, b, targets)
		}
		if got, want := cb.n["PackWeightBF16"], perPack[DTypeBF16]; got != want {
			t.Errorf("3 LoRA steps: %d bf16 packing calls, want %d (the frozen base once)", got, want)
		}
	})
}
