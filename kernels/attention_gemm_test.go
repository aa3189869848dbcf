package kernels

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestAttentionGEMMMatchesLoops compares the matrix-product backward of
// attention_gemm.go with the scalar loops of attention.go (GQA, left and
// right padding, random masks), at |diff| <= 1e-5 + 1e-4·|ref|, on the
// forward's outputs.
func TestAttentionGEMMMatchesLoops(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	for _, s := range []struct{ B, T, NH, NKV, HS int }{
		{2, 8, 2, 1, 8},
		{3, sizes(33, 130), 6, 2, 16},
		{1, sizes(64, 257), 4, 4, 32},
	} {
		t.Run(fmt.Sprintf("B%d_T%d_NH%d_NKV%d_HS%d", s.B, s.T, s.NH, s.NKV, s.HS), func(t *testing.T) {
			B, T, NH, NKV, HS := s.B, s.T, s.NH, s.NKV, s.HS
			q, k, v := randSlice(r, B*T*NH*HS, 2), randSlice(r, B*T*NKV*HS, 2), randSlice(r, B*T*NKV*HS, 1)
			valid := make([]bool, B*T)
			for i := range valid {
				valid[i] = r.Intn(5) != 0
			}
			for i := 0; i < T/3 && B > 1; i++ {
				valid[T+i] = false // left padding in sequence 1
			}
			o2, l2 := make([]float32, len(q)), make([]float32, B*NH*T)
			AttentionForward(o2, l2, q, k, v, valid, B, T, NH, NKV, HS)
			dout := randSlice(r, len(q), 1)
			g1 := [3][]float32{randSlice(r, len(q), 1), randSlice(r, len(k), 1), randSlice(r, len(v), 1)}
			g2 := [3][]float32{clone(g1[0]), clone(g1[1]), clone(g1[2])} // accumulate onto the same values
			attnBackwardGEMM(g1[0], g1[1], g1[2], dout, q, k, v, o2, l2, valid, B, T, NH, NKV, HS)
			attnBackwardLoops(g2[0], g2[1], g2[2], dout, q, k, v, o2, l2, valid, B, T, NH, NKV, HS)
			for i, name := range []string{"dq", "dk", "dv"} {
				assertClose(t, name, g1[i], g2[i], 1e-5, 1e-4)
			}
		})
	}
}
