package trainer

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHeadSlicedIsRows: the head's backward by vocabulary slices gives
// the gradients (and the forward the log-probs, entropies and loss) of
// the backward chunk of rows by chunk, bit for bit: log-probs with and
// without entropy at temperatures 0.8 and 1, a vocabulary limit below the
// embedding's rows, the SFT loss, tied and untied embeddings, LoRA
// (whose lm_head is streamed, not packed), and bf16 (with chunks of an
// even number of rows: its weight gradients sum rows in pairs). The vocabulary (300) is not a
// multiple of the 16-id panel, so the last slice is partial.
func TestHeadSlicedIsRows(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tied    bool
		lora    bool
		ce      bool
		entropy bool
		temp    float32
		dtype   string
	}{
		{"logp/entropy/untied", false, false, false, true, 0.8, DTypeFP32},
		{"logp/tied", true, false, false, false, 1, DTypeFP32},
		{"ce/tied", true, false, true, false, 1, DTypeFP32},
		{"logp/entropy/lora", false, true, false, true, 1, DTypeFP32},
		{"bf16/logp/entropy/untied", false, false, false, true, 0.8, DTypeBF16},
		{"bf16/ce/tied", true, false, true, false, 1, DTypeBF16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("qwen2", tc.tied)
			c.VocabSize = 300
			rng := rand.New(rand.NewPCG(11, 12))
			b := testBatch(rng, 290, []int{7, 5}, 7)
			targets := NextTokenTargets(b, nil)
			N := b.B * b.T
			dlogp, dent := make([]float32, N), make([]float32, N)
			for n := range N {
				dlogp[n], dent[n] = float32(n%3)-1, 0.05*float32(n%4)
			}
			var out [2][][]float32
			for i, rows := range []bool{false, true} {
				m := newTestModel(t, c, 13)
				m.HeadChunk, m.VocabLimit, m.noHeadSlices = 4, 290, rows
				if err := m.SetDType(tc.dtype); err != nil {
					t.Fatal(err)
				}
				if tc.lora {
					lo, err := NewLoRA(m, LoRAConfig{Rank: 2, Alpha: 4, Targets: LoRATargetNames}, 1, "", "")
					if err != nil {
						t.Fatal(err)
					}
					lr := rand.New(rand.NewPCG(9, 9))
					for i := range lo.Params { // B ≠ 0, so that A has a gradient
						lo.Params[i] = float32(0.3 * lr.NormFloat64())
					}
				}
				var fwd []float32
				var err error
				if tc.ce {
					var loss float32
					loss, _, err = m.ForwardCE(b, targets)
					fwd = []float32{loss}
				} else {
					var lp, ent []float32
					lp, ent, err = m.ForwardLogp(b, targets, tc.temp, tc.entropy)
					fwd = append(slices.Clone(lp), ent...)
				}
				if err != nil {
					t.Fatal(err)
				}
				if W := m.headSliceWidth(N); (W > 0) == rows {
					t.Fatalf("rows=%v: slice width %d", rows, W)
				}
				switch {
				case tc.ce:
					err = m.BackwardCE(0.9)
				case tc.entropy:
					err = m.BackwardLogp(dlogp, dent)
				default:
					err = m.BackwardLogp(dlogp, nil)
				}
				if err != nil {
					t.Fatal(err)
				}
				_, _, grads := m.Trainable()
				out[i] = [][]float32{fwd, slices.Clone(grads)}
			}
			for j, what := range []string{"forward", "gradients"} {
				if !bitsEqual(out[0][j], out[1][j]) {
					t.Errorf("%s: vocabulary slices and chunks of rows differ", what)
				}
			}
		})
	}
}
