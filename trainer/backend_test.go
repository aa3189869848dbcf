package trainer

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// countingBackend counts some of the calls that reach it and passes them
// on to the CPU backend.
type countingBackend struct {
	Backend
	n map[string]int
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
				if tc.recompute {
					fwdLayers = 2 * L
				}
				expect := map[string]int{
					"AttentionForward": fwdLayers, "AttentionBackward": L,
					"HeadForward": headFwd, "HeadBackwardLogp": chunks,
					"RMSNormBackward": 2*L + 1, "EmbeddingBackward": 1,
				}
				if tc.dtype == DTypeBF16 {
					expect["MatmulForwardBF16"] = 7*fwdLayers + headFwd
				} else {
					expect["MatmulForward"] = 7 * fwdLayers
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
}
