//go:build cuda && cgo

package cuda

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// Shapes are deliberately not multiples of the kernels' tiles (64, 16, 32,
// 2048) nor of the CPU's 8-wide dot products.

func TestEmbedding(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(1, 2))
	N, C, V := 37, 45, 53
	wte := randn(rng, V*C, 1)
	tok := make([]int32, N)
	for i := range tok {
		tok[i] = int32(rng.IntN(V / 4)) // repeats: the backward's row order matters
	}
	want := make([]float32, N*C)
	kernels.EmbeddingForward(want, wte, tok, N, C)
	out := up(t, d, "out", make([]float32, N*C))
	tb := upI32(t, d, "tokens", tok)
	must(t, d.EmbeddingForward(out, up(t, d, "wte", wte), tb, N, C, V))
	sameBits(t, "embedding forward", down(t, d, out, N*C), want)

	dout := randn(rng, N*C, 1)
	dw := randn(rng, V*C, 1)
	dwb := up(t, d, "dwte", dw)
	kernels.EmbeddingBackward(dw, dout, tok, N, C)
	must(t, d.EmbeddingBackward(dwb, up(t, d, "dout", dout), tb, N, C, V))
	sameBits(t, "embedding backward", down(t, d, dwb, V*C), dw)
}

func TestRMSNorm(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(3, 4))
	N, C := 19, 77
	inp, w := randn(rng, N*C, 2), randn(rng, C, 1)
	out, rstd := make([]float32, N*C), make([]float32, N)
	kernels.RMSNormForward(out, rstd, inp, w, N, C, 1e-6)
	ob, rb, ib, wb := up(t, d, "out", make([]float32, N*C)), up(t, d, "rstd", make([]float32, N)), up(t, d, "inp", inp), up(t, d, "w", w)
	must(t, d.RMSNormForward(ob, rb, ib, wb, N, C, 1e-6))
	sameBits(t, "rmsnorm out", down(t, d, ob, N*C), out)
	sameBits(t, "rmsnorm rstd", down(t, d, rb, N), rstd)

	dout, dinp, dw := randn(rng, N*C, 1), randn(rng, N*C, 1), randn(rng, C, 1)
	dib, dwb := up(t, d, "dinp", dinp), up(t, d, "dw", dw)
	kernels.RMSNormBackward(dinp, dw, dout, inp, w, rstd, N, C)
	must(t, d.RMSNormBackward(dib, dwb, up(t, d, "dout", dout), ib, wb, rb, N, C))
	sameBits(t, "rmsnorm dinp", down(t, d, dib, N*C), dinp)
	sameBits(t, "rmsnorm dweight", down(t, d, dwb, C), dw)
}

func TestRope(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(5, 6))
	N, NH, HS, maxPos := 23, 3, 18, 700
	pos := make([]int32, N)
	for i := range pos {
		pos[i] = int32(rng.IntN(maxPos))
	}
	tab, err := d.NewRopeTable(maxPos, HS, 1e6)
	must(t, err)
	defer tab.Free()
	inp := randn(rng, N*NH*HS, 1)
	want := make([]float32, N*NH*HS)
	kernels.RopeForward(want, inp, pos, N, NH, HS, 1e6)
	ob, pb := up(t, d, "out", make([]float32, N*NH*HS)), upI32(t, d, "pos", pos)
	must(t, d.RopeForward(ob, up(t, d, "inp", inp), pb, N, NH, HS, tab))
	sameBits(t, "rope forward", down(t, d, ob, N*NH*HS), want)

	dout, dinp := randn(rng, N*NH*HS, 1), randn(rng, N*NH*HS, 1)
	db := up(t, d, "dinp", dinp)
	kernels.RopeBackward(dinp, dout, pos, N, NH, HS, 1e6)
	must(t, d.RopeBackward(db, up(t, d, "dout", dout), pb, N, NH, HS, tab))
	sameBits(t, "rope backward", down(t, d, db, N*NH*HS), dinp)
}

func TestSwiGLUResidual(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(7, 8))
	N := 70001
	gate, upv := randn(rng, N, 4), randn(rng, N, 1)
	gate[0], gate[1], gate[2] = -95, 100, -87.5 // expf's subnormal and overflow branches
	want := make([]float32, N)
	kernels.SwiGLUForward(want, gate, upv, N)
	gb, ub, ob := up(t, d, "gate", gate), up(t, d, "up", upv), up(t, d, "out", make([]float32, N))
	must(t, d.SwiGLUForward(ob, gb, ub, N))
	sameBits(t, "swiglu forward", down(t, d, ob, N), want)

	dout, dg, du := randn(rng, N, 1), randn(rng, N, 1), randn(rng, N, 1)
	dgb, dub := up(t, d, "dgate", dg), up(t, d, "dup", du)
	kernels.SwiGLUBackward(dg, du, dout, gate, upv, N)
	db := up(t, d, "dout", dout)
	must(t, d.SwiGLUBackward(dgb, dub, db, gb, ub, N))
	sameBits(t, "swiglu dgate", down(t, d, dgb, N), dg)
	sameBits(t, "swiglu dup", down(t, d, dub, N), du)

	kernels.ResidualForward(want, gate, upv, N)
	must(t, d.ResidualForward(ob, gb, ub, N))
	sameBits(t, "residual forward", down(t, d, ob, N), want)
	kernels.ResidualBackward(dg, du, dout, N)
	must(t, d.ResidualBackward(dgb, dub, db, N))
	sameBits(t, "residual da", down(t, d, dgb, N), dg)
	sameBits(t, "residual db", down(t, d, dub, N), du)
}

func TestAdamWGradNorm(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(9, 10))
	n := 3*(1<<14) + 17
	p, m, v, g := randn(rng, n, 1), randn(rng, n, 0.1), randn(rng, n, 0.01), randn(rng, n, 1)
	for i := range v {
		v[i] *= v[i]
	}
	pb, mb, vb, gb := up(t, d, "p", p), up(t, d, "m", m), up(t, d, "v", v), up(t, d, "g", g)
	norm, err := d.GradNorm(gb, n)
	must(t, err)
	if want := kernels.GradNorm(g); norm != want {
		t.Errorf("grad norm %v, want the CPU's %v", norm, want)
	}
	cfg := kernels.AdamWConfig{LR: 3e-4, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	kernels.AdamWStep(p, m, v, g, 0.5, cfg, 7, true)
	must(t, d.AdamWStep(pb, mb, vb, gb, n, 0.5, cfg, 7, true))
	sameBits(t, "adamw params", down(t, d, pb, n), p)
	sameBits(t, "adamw m", down(t, d, mb, n), m)
	sameBits(t, "adamw v", down(t, d, vb, n), v)
	sameBits(t, "adamw grads (zeroed)", down(t, d, gb, n), g)
}

// TestDeviceErrors: bad arguments name the kernel and the buffer; a token
// out of range is reported by the next Sync; out of memory names the buffer.
func TestDeviceErrors(t *testing.T) {
	d := openDev(t)
	small := up(t, d, "small", make([]float32, 10))
	err := d.RMSNormForward(small, small, small, small, 4, 5, 1e-6)
	if err == nil || !strings.Contains(err.Error(), "rmsnorm_forward") || !strings.Contains(err.Error(), "need 20") {
		t.Errorf("short buffer: %v", err)
	}
	wte := up(t, d, "wte", make([]float32, 6*4))
	out := up(t, d, "out", make([]float32, 3*4))
	must(t, d.EmbeddingForward(out, wte, upI32(t, d, "tokens", []int32{1, 2, 60}), 3, 4, 6))
	if err := d.Sync(); err == nil || !strings.Contains(err.Error(), "embedding_forward: token 60 at row 2 out of range [0,6)") {
		t.Errorf("token out of range: %v", err)
	}
	if err := d.Sync(); err != nil {
		t.Errorf("the device error word was not cleared: %v", err)
	}
	_, err = d.Alloc("activations", F32, 1<<50)
	if err == nil || !strings.Contains(err.Error(), "out of GPU memory allocating activations") {
		t.Errorf("huge alloc: %v", err)
	}
}
