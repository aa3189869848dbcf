package kernels

import (
	"math/rand"
	"testing"
)

func TestSmokeMatmulAttention(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	B, C, OC := 33, 70, 45
	inp, w, bias := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)
	got, want := make([]float32, B*OC), make([]float32, B*OC)
	MatmulForward(got, inp, w, bias, B, C, OC)
	naiveMatmulForward(want, inp, w, bias, B, C, OC)
	assertClose(t, "out", got, want, 1e-5, 1e-5)
	dout := randSlice(r, B*OC, 1)
	di, dw, db := make([]float32, B*C), make([]float32, OC*C), make([]float32, OC)
	ni, nw, nb := make([]float32, B*C), make([]float32, OC*C), make([]float32, OC)
	MatmulBackward(di, dw, db, dout, inp, w, B, C, OC)
	naiveMatmulBackward(ni, nw, nb, dout, inp, w, B, C, OC)
	assertClose(t, "dinp", di, ni, 1e-4, 1e-4)
	assertClose(t, "dw", dw, nw, 1e-4, 1e-4)
	assertClose(t, "db", db, nb, 1e-4, 1e-4)

	Bt, T, NH, NKV, HS := 2, 7, 4, 2, 8
	q, k, v := randSlice(r, Bt*T*NH*HS, 1), randSlice(r, Bt*T*NKV*HS, 1), randSlice(r, Bt*T*NKV*HS, 1)
	valid := make([]bool, Bt*T)
	for i := range valid {
		valid[i] = i%5 != 2
	}
	o1, l1 := make([]float32, Bt*T*NH*HS), make([]float32, Bt*NH*T)
	o2, l2 := make([]float32, Bt*T*NH*HS), make([]float32, Bt*NH*T)
	AttentionForward(o1, l1, q, k, v, valid, Bt, T, NH, NKV, HS)
	naiveAttentionForward(o2, l2, q, k, v, valid, Bt, T, NH, NKV, HS)
	assertClose(t, "att", o1, o2, 1e-5, 1e-5)
	assertClose(t, "lse", l1, l2, 1e-5, 1e-5)
	do := randSlice(r, len(o1), 1)
	g1 := [3][]float32{make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))}
	g2 := [3][]float32{make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))}
	AttentionBackward(g1[0], g1[1], g1[2], do, q, k, v, o1, l1, valid, Bt, T, NH, NKV, HS)
	naiveAttentionBackward(g2[0], g2[1], g2[2], do, q, k, v, o2, l2, valid, Bt, T, NH, NKV, HS)
	for i := range g1 {
		assertClose(t, "dqkv", g1[i], g2[i], 1e-5, 1e-4)
	}
}
