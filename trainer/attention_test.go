package trainer

import (
	"math"
	"math/rand/v2"
	"testing"

	"rljob/kernels"
)

// TestAttentionMatmul: the matmul formulation of attention's backward, on
// the outputs of the trainer's forward (kernels.AttentionForwardBI), equals
// kernels.AttentionForward/Backward (the reference) on random inputs with
// GQA and padding, to |got−ref| ≤ 1e-5 + 1e-4·|ref|.
func TestAttentionMatmul(t *testing.T) {
	for _, tc := range []struct {
		name              string
		B, T, NH, NKV, HS int
		lens              []int
	}{
		{"mha full", 2, 7, 2, 2, 8, nil},
		{"gqa padded", 3, 9, 4, 2, 6, []int{9, 4, 1}},
		{"mqa padded", 2, 16, 4, 1, 16, []int{5, 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 1))
			rnd := func(n int) []float32 {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				return x
			}
			nq, nk := tc.B*tc.T*tc.NH*tc.HS, tc.B*tc.T*tc.NKV*tc.HS
			q, k, v, dout := rnd(nq), rnd(nk), rnd(nk), rnd(nq)
			var valid []bool
			if tc.lens != nil {
				valid = make([]bool, tc.B*tc.T)
				for b, l := range tc.lens {
					for t := range l {
						valid[b*tc.T+t] = true
					}
				}
			}
			nl := tc.B * tc.NH * tc.T
			outR, lseR, out, lse := make([]float32, nq), make([]float32, nl), make([]float32, nq), make([]float32, nl)
			kernels.AttentionForward(outR, lseR, q, k, v, valid, tc.B, tc.T, tc.NH, tc.NKV, tc.HS)
			kernels.AttentionForwardBI(out, lse, q, k, v, valid, tc.B, tc.T, tc.NH, tc.NKV, tc.HS)
			cmp(t, "out", out, outR)
			cmp(t, "lse", lse, lseR)
			dqR, dkR, dvR := rnd(nq), rnd(nk), rnd(nk) // non-zero: checks accumulation
			dq, dk, dv := append([]float32(nil), dqR...), append([]float32(nil), dkR...), append([]float32(nil), dvR...)
			kernels.AttentionBackward(dqR, dkR, dvR, dout, q, k, v, outR, lseR, valid, tc.B, tc.T, tc.NH, tc.NKV, tc.HS)
			attentionBackwardMM(dq, dk, dv, dout, q, k, v, out, lse, valid, tc.B, tc.T, tc.NH, tc.NKV, tc.HS)
			cmp(t, "dq", dq, dqR)
			cmp(t, "dk", dk, dkR)
			cmp(t, "dv", dv, dvR)
		})
	}
}

func cmp(t *testing.T, name string, got, ref []float32) {
	t.Helper()
	for i := range ref {
		if d := math.Abs(float64(got[i] - ref[i])); d > 1e-5+1e-4*math.Abs(float64(ref[i])) {
			t.Errorf("%s[%d] = %v, reference %v", name, i, got[i], ref[i])
			return
		}
	}
}
