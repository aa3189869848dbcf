//go:build cuda && cgo

package trainer

import (
	"github.com/rljob/rljob/kernels/cuda"
)

// The CUDA backend's kernels that map one to one onto kernels/cuda's
// Device methods (cuda_backend.go has the staging, the prepared weights
// and the bf16 backward): inputs uploaded, accumulated outputs uploaded
// too, outputs downloaded.

// Zero clears x: its device copy when x is kept (Keep), else the host's.
func (b *cudaBackend) Zero(x []float32) {
	if len(x) == 0 {
		return
	}
	defer b.enter()()
	if r, off := b.res.find(x); r != nil {
		b.must(b.d.Zero(r.dev.View(off, len(x))))
		b.res.out(x)
		return
	}
	parallelClear(x)
}

// RoundBF16 rounds x to bf16 in place on the device (x's kept copy, or
// x uploaded and downloaded).
func (b *cudaBackend) RoundBF16(x []float32) {
	if len(x) == 0 {
		return
	}
	defer b.enter()()
	xb := b.in("round bf16", x)
	b.must(b.d.RoundBF16(xb, len(x)))
	b.get(x, xb)
}

func (b *cudaBackend) EmbeddingForward(out, wte []float32, tokens []int32, N, C int) {
	defer b.enter()()
	V := len(wte) / C
	o := b.out("out", out[:N*C])
	b.must(b.d.EmbeddingForward(o, b.in("wte", wte[:V*C]), b.ints("tokens", tokens[:N]), N, C, V))
	b.get(out[:N*C], o)
}

func (b *cudaBackend) EmbeddingBackward(dwte, dout []float32, tokens []int32, N, C int) {
	defer b.enter()()
	V := len(dwte) / C
	dw := b.in("dwte", dwte[:V*C])
	b.must(b.d.EmbeddingBackward(dw, b.in("dout", dout[:N*C]), b.ints("tokens", tokens[:N]), N, C, V))
	b.get(dwte[:V*C], dw)
}

func (b *cudaBackend) RMSNormForward(out, rstd, inp, weight []float32, N, C int, eps float32) {
	defer b.enter()()
	o, r := b.out("out", out[:N*C]), b.out("rstd", rstd[:N])
	b.must(b.d.RMSNormForward(o, r, b.in("inp", inp[:N*C]), b.in("weight", weight[:C]), N, C, eps))
	b.get(out[:N*C], o)
	b.get(rstd[:N], r)
}

func (b *cudaBackend) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd []float32, N, C int) {
	defer b.enter()()
	di, dw := b.in("dinp", dinp[:N*C]), b.in("dweight", opt(dweight, C))
	b.must(b.d.RMSNormBackward(di, dw, b.in("dout", dout[:N*C]), b.in("inp", inp[:N*C]), b.in("weight", weight[:C]),
		b.in("rstd", rstd[:N]), N, C))
	b.get(dinp[:N*C], di)
	b.get(opt(dweight, C), dw)
}

// ropeTable returns a device table of cos/sin for positions [0, maxPos)
// at least, built once per head size and theta and regrown (doubling)
// when a longer sequence comes.
func (b *cudaBackend) ropeTable(pos []int32, HS int, theta float32) *cuda.RopeTable {
	need := 1
	for _, p := range pos {
		need = max(need, int(p)+1)
	}
	key := ropeKey{HS, theta}
	if t := b.rope[key]; t != nil && t.MaxPos >= need {
		return t
	}
	if t := b.rope[key]; t != nil {
		b.must(b.d.Sync())
		t.Free()
		need = max(need, 2*t.MaxPos)
	}
	t, err := b.d.NewRopeTable(max(need, 1024), HS, theta)
	b.must(err)
	b.rope[key] = t
	return t
}

func (b *cudaBackend) RopeForward(out, inp []float32, pos []int32, N, NH, HS int, theta float32) {
	defer b.enter()()
	n := N * NH * HS
	tab := b.ropeTable(pos[:N], HS, theta)
	o := b.out("out", out[:n])
	b.must(b.d.RopeForward(o, b.in("inp", inp[:n]), b.ints("pos", pos[:N]), N, NH, HS, tab))
	b.get(out[:n], o)
}

func (b *cudaBackend) RopeBackward(dinp, dout []float32, pos []int32, N, NH, HS int, theta float32) {
	defer b.enter()()
	n := N * NH * HS
	tab := b.ropeTable(pos[:N], HS, theta)
	di := b.in("dinp", dinp[:n])
	b.must(b.d.RopeBackward(di, b.in("dout", dout[:n]), b.ints("pos", pos[:N]), N, NH, HS, tab))
	b.get(dinp[:n], di)
}

func (b *cudaBackend) AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	defer b.enter()()
	nq, nk := B*T*NH*HS, B*T*NKV*HS
	o, l := b.out("out", out[:nq]), b.out("lse", lse[:B*NH*T])
	b.must(b.d.AttentionForward(o, l, b.in("q", q[:nq]), b.in("k", k[:nk]), b.in("v", v[:nk]), b.mask("valid", validPrefix(valid, B*T)),
		B, T, NH, NKV, HS))
	b.get(out[:nq], o)
	b.get(lse[:B*NH*T], l)
}

func (b *cudaBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	defer b.enter()()
	nq, nk := B*T*NH*HS, B*T*NKV*HS
	gq, gk, gv := b.in("dq", dq[:nq]), b.in("dk", dk[:nk]), b.in("dv", dv[:nk])
	b.must(b.d.AttentionBackward(gq, gk, gv, b.in("dout", dout[:nq]), b.in("q", q[:nq]), b.in("k", k[:nk]), b.in("v", v[:nk]),
		b.in("out", out[:nq]), b.in("lse", lse[:B*NH*T]), b.mask("valid", validPrefix(valid, B*T)), B, T, NH, NKV, HS))
	b.get(dq[:nq], gq)
	b.get(dk[:nk], gk)
	b.get(dv[:nk], gv)
}

func validPrefix(v []bool, n int) []bool {
	if v == nil {
		return nil
	}
	return v[:n]
}

func (b *cudaBackend) SwiGLUForward(out, gate, up []float32, N int) {
	defer b.enter()()
	o := b.out("out", out[:N])
	b.must(b.d.SwiGLUForward(o, b.in("gate", gate[:N]), b.in("up", up[:N]), N))
	b.get(out[:N], o)
}

func (b *cudaBackend) SwiGLUBackward(dgate, dup, dout, gate, up []float32, N int) {
	defer b.enter()()
	dg, du := b.in("dgate", dgate[:N]), b.in("dup", dup[:N])
	b.must(b.d.SwiGLUBackward(dg, du, b.in("dout", dout[:N]), b.in("gate", gate[:N]), b.in("up", up[:N]), N))
	b.get(dgate[:N], dg)
	b.get(dup[:N], du)
}

func (b *cudaBackend) ResidualForward(out, x, y []float32, N int) {
	defer b.enter()()
	o := b.out("out", out[:N])
	b.must(b.d.ResidualForward(o, b.in("a", x[:N]), b.in("b", y[:N]), N))
	b.get(out[:N], o)
}

func (b *cudaBackend) ScaleAdd(out, x []float32, s float32, add bool) {
	if len(x) == 0 {
		return
	}
	defer b.enter()()
	n := len(x)
	var o *cuda.Buf
	if add { // out is read too
		o = b.in("scale out", out[:n])
	} else {
		o = b.out("scale out", out[:n])
	}
	b.must(b.d.ScaleAdd(o, b.in("scale x", x), s, n, add))
	b.get(out[:n], o)
}

func (b *cudaBackend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	defer b.enter()()
	o := b.out("out", out[:N*OC])
	b.must(b.d.MatmulForward(o, b.in("inp", inp[:N*C]), b.in("weight", weight[:OC*C]), b.in("bias", opt(bias, OC)), N, C, OC))
	b.get(out[:N*OC], o)
}

func (b *cudaBackend) MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	defer b.enter()()
	di, dw, db := b.in("dinp", opt(dinp, N*C)), b.in("dweight", opt(dweight, OC*C)), b.in("dbias", opt(dbias, OC))
	b.must(b.d.MatmulBackward(di, dw, db, b.in("dout", dout[:N*OC]), b.in("inp", inp[:N*C]), b.in("weight", weight[:OC*C]), N, C, OC))
	b.get(opt(dinp, N*C), di)
	b.get(opt(dweight, OC*C), dw)
	b.get(opt(dbias, OC), db)
}

func (b *cudaBackend) HeadForward(e, r, lse, logp, ent, logits []float32, targets []int32, N, V, VL int, temp float32) {
	defer b.enter()()
	ge, gr, gl, gp := b.out("e", e[:N*V]), b.out("r", r[:N]), b.out("lse", lse[:N]), b.out("logp", logp[:N])
	gent := b.out("ent", opt(ent, N))
	b.must(b.d.HeadForward(ge, gr, gl, gp, gent, b.in("logits", logits[:N*V]), b.ints("targets", targets[:N]), N, V, VL, temp))
	b.get(e[:N*V], ge)
	b.get(r[:N], gr)
	b.get(lse[:N], gl)
	b.get(logp[:N], gp)
	b.get(opt(ent, N), gent)
}

func (b *cudaBackend) HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent []float32, targets []int32, N, V, VL int, temp float32) {
	defer b.enter()()
	ge := b.in("e", e[:N*V])
	b.must(b.d.HeadBackwardLogp(ge, b.in("r", r[:N]), b.in("dlogp", dlogp[:N]), b.in("dent", opt(dent, N)), b.in("logits", logits[:N*V]),
		b.in("lse", lse[:N]), b.in("ent", opt(ent, N)), b.ints("targets", targets[:N]), N, V, VL, temp))
	b.get(e[:N*V], ge)
}

func (b *cudaBackend) HeadBackwardCE(e, r []float32, dloss float32, targets []int32, count, N, V int) {
	defer b.enter()()
	ge := b.in("e", e[:N*V])
	b.must(b.d.HeadBackwardCE(ge, b.in("r", r[:N]), dloss, b.ints("targets", targets[:N]), count, N, V))
	b.get(e[:N*V], ge)
}
