//go:build cuda && cgo

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels"
)

func TestMatmulBI(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(11, 12))
	B, C, OC := 67, 131, 77
	inp, w, bias := randn(rng, B*C, 1), randn(rng, OC*C, 0.1), randn(rng, OC, 1)
	ib, wb, bb := up(t, d, "inp", inp), up(t, d, "w", w), up(t, d, "bias", bias)
	for _, withBias := range []bool{true, false} {
		want := make([]float32, B*OC)
		var bh []float32
		var bd *Buf
		if withBias {
			bh, bd = bias, bb
		}
		kernels.MatmulForward(want, inp, w, bh, B, C, OC)
		ob := up(t, d, "out", make([]float32, B*OC))
		must(t, d.MatmulForward(ob, ib, wb, bd, B, C, OC))
		sameBits(t, "matmul forward", down(t, d, ob, B*OC), want)
	}
	// batch invariance on the device itself: row 40 alone has its bits in the batch
	want := make([]float32, B*OC)
	kernels.MatmulForward(want, inp, w, bias, B, C, OC)
	one := up(t, d, "one", make([]float32, OC))
	must(t, d.MatmulForward(one, ib.View(40*C, C), wb, bb, 1, C, OC))
	sameBits(t, "matmul forward, one row", down(t, d, one, OC), want[40*OC:41*OC])

	dout := randn(rng, B*OC, 1)
	dinp, dw, db := randn(rng, B*C, 1), randn(rng, OC*C, 1), randn(rng, OC, 1)
	dib, dwb, dbb := up(t, d, "dinp", dinp), up(t, d, "dw", dw), up(t, d, "db", db)
	kernels.MatmulBackward(dinp, dw, db, dout, inp, w, B, C, OC)
	must(t, d.MatmulBackward(dib, dwb, dbb, up(t, d, "dout", dout), ib, wb, B, C, OC))
	sameBits(t, "matmul dinp", down(t, d, dib, B*C), dinp)
	sameBits(t, "matmul dweight", down(t, d, dwb, OC*C), dw)
	sameBits(t, "matmul dbias", down(t, d, dbb, OC), db)
}

func TestAttention(t *testing.T) {
	d := openDev(t)
	for _, tc := range []struct {
		name              string
		B, T, NH, NKV, HS int
		pad               bool
		exactBackward     bool
	}{
		{"T37 padded", 2, 37, 6, 2, 20, true, true},
		{"T70", 1, 70, 4, 4, 16, false, true},
		{"T5 (CPU backward uses its scalar loops)", 2, 5, 2, 1, 12, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(13, uint64(tc.T)))
			B, T, NH, NKV, HS := tc.B, tc.T, tc.NH, tc.NKV, tc.HS
			nq, nk := B*T*NH*HS, B*T*NKV*HS
			q, k, v := randn(rng, nq, 1), randn(rng, nk, 1), randn(rng, nk, 1)
			var valid []bool
			var vb *Buf
			if tc.pad {
				valid = make([]bool, B*T)
				for i := range valid {
					valid[i] = i%T >= 3 && i%T < T-2 // left and right padding
				}
				vb = upBool(t, d, "valid", valid)
			}
			out, lse := make([]float32, nq), make([]float32, B*NH*T)
			kernels.AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
			qb, kb, vvb := up(t, d, "q", q), up(t, d, "k", k), up(t, d, "v", v)
			ob, lb := up(t, d, "out", make([]float32, nq)), up(t, d, "lse", make([]float32, B*NH*T))
			must(t, d.AttentionForward(ob, lb, qb, kb, vvb, vb, B, T, NH, NKV, HS))
			sameBits(t, "attention out", down(t, d, ob, nq), out)
			sameBits(t, "attention lse", down(t, d, lb, B*NH*T), lse)

			dout := randn(rng, nq, 1)
			dq, dk, dv := randn(rng, nq, 0.1), randn(rng, nk, 0.1), randn(rng, nk, 0.1)
			dqb, dkb, dvb := up(t, d, "dq", dq), up(t, d, "dk", dk), up(t, d, "dv", dv)
			kernels.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
			must(t, d.AttentionBackward(dqb, dkb, dvb, up(t, d, "dout", dout), qb, kb, vvb, ob, lb, vb, B, T, NH, NKV, HS))
			cmp := sameBits
			if !tc.exactBackward {
				cmp = func(t testing.TB, name string, got, want []float32) { near(t, name, got, want, 1e-5) }
			}
			cmp(t, "attention dq", down(t, d, dqb, nq), dq)
			cmp(t, "attention dk", down(t, d, dkb, nk), dk)
			cmp(t, "attention dv", down(t, d, dvb, nk), dv)
		})
	}
}

func TestHead(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(15, 16))
	N, V, VL := 9, 5003, 4990 // V spans three of the kernel's 2048-wide tiles
	var temp float32 = 0.7
	logits := randn(rng, N*V, 3)
	tg := make([]int32, N)
	for i := range tg {
		tg[i] = int32(rng.IntN(VL))
	}
	tg[4] = -1
	e, r, lse, logp, ent := make([]float32, N*V), make([]float32, N), make([]float32, N), make([]float32, N), make([]float32, N)
	kernels.HeadForward(e, r, lse, logp, ent, logits, tg, N, V, VL, temp)
	eb, rb, lb, pb, hb := up(t, d, "e", make([]float32, N*V)), up(t, d, "r", make([]float32, N)), up(t, d, "lse", make([]float32, N)),
		up(t, d, "logp", make([]float32, N)), up(t, d, "ent", make([]float32, N))
	xb, tb := up(t, d, "logits", logits), upI32(t, d, "targets", tg)
	must(t, d.HeadForward(eb, rb, lb, pb, hb, xb, tb, N, V, VL, temp))
	sameBits(t, "head e", down(t, d, eb, N*V), e)
	sameBits(t, "head r", down(t, d, rb, N), r)
	sameBits(t, "head lse", down(t, d, lb, N), lse)
	sameBits(t, "head logp", down(t, d, pb, N), logp)
	sameBits(t, "head ent", down(t, d, hb, N), ent)
	for i := range N {
		if tg[i] >= 0 {
			if lp := kernels.LogProbRow(logits[i*V:i*V+VL], tg[i], temp); lp != logp[i] {
				t.Fatalf("row %d: LogProbRow %v != HeadForward %v (CPU)", i, lp, logp[i])
			}
		}
	}

	dlogp, dent := randn(rng, N, 1), randn(rng, N, 1)
	dlb, deb := up(t, d, "dlogp", dlogp), up(t, d, "dent", dent)
	for _, withEnt := range []bool{true, false} {
		ee := clone(e)
		must(t, d.Upload(eb, e))
		var dh []float32
		var dd, hh *Buf
		if withEnt {
			dh, dd, hh = dent, deb, hb
		}
		kernels.HeadBackwardLogp(ee, r, dlogp, dh, logits, lse, ent, tg, N, V, VL, temp)
		must(t, d.HeadBackwardLogp(eb, rb, dlb, dd, xb, lb, hh, tb, N, V, VL, temp))
		sameBits(t, "head dlogits", down(t, d, eb, N*V), ee)
	}
	// cross-entropy at temperature 1
	kernels.HeadForward(e, r, lse, logp, nil, logits, tg, N, V, V, 1)
	must(t, d.HeadForward(eb, rb, lb, pb, nil, xb, tb, N, V, V, 1))
	kernels.HeadBackwardCE(e, r, 1.5, tg, N-1, N, V)
	must(t, d.HeadBackwardCE(eb, rb, 1.5, tb, N-1, N, V))
	sameBits(t, "head CE dlogits", down(t, d, eb, N*V), e)
}

func TestGemmCublas(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(17, 18))
	M, N, K := 77, 131, 259
	a, w := randn(rng, M*K, 1), randn(rng, N*K, 1)
	want := make([]float32, M*N)
	kernels.MatmulForward(want, a, w, nil, M, K, N)
	ab, wb := up(t, d, "a", a), up(t, d, "w", w)
	cb := up(t, d, "c", make([]float32, M*N))
	for _, tc := range []struct {
		mode GemmMode
		tol  float64
	}{{GemmFP32, 1e-5}, {GemmTF32, 3e-2}, {GemmBF16, 5e-2}} {
		x, y := ab, wb
		if tc.mode == GemmBF16 {
			var err error
			x, err = d.Alloc("a bf16", BF16, M*K)
			must(t, err)
			y, err = d.Alloc("w bf16", BF16, N*K)
			must(t, err)
			must(t, d.ToBF16(x, ab, M*K))
			must(t, d.ToBF16(y, wb, N*K))
		}
		// out = a · wᵀ : op(b) = wᵀ, b (N, K) transposed
		must(t, d.GemmCublas(tc.mode, false, true, M, N, K, 1, x, K, y, K, 0, cb, N))
		got := down(t, d, cb, M*N)
		for i := range got { // errors grow with √K·|a||w|; scale them to O(1)
			got[i] /= 16
		}
		ref := clone(want)
		for i := range ref {
			ref[i] /= 16
		}
		near(t, "cublas "+tc.mode.String(), got, ref, tc.tol)
		if tc.mode == GemmBF16 {
			x.Free()
			y.Free()
		}
	}
}

// TestAttentionDecode: two sequences of different lengths, one new query
// each, against kernels.AttentionDecodeBI over a CPU KV cache.
func TestAttentionDecode(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(21, 22))
	B, Tmax, NH, NKV, HS := 2, 45, 6, 2, 20
	lens := []int32{45, 17}
	kc, vc := randn(rng, B*Tmax*NKV*HS, 1), randn(rng, B*Tmax*NKV*HS, 1)
	q := randn(rng, B*NH*HS, 1)
	want := make([]float32, B*NH*HS)
	for b := range B {
		c := kernels.NewKVCacheBI(NKV, HS, 4)
		for u := range int(lens[b]) {
			o := (b*Tmax + u) * NKV * HS
			c.Append(kc[o:o+NKV*HS], vc[o:o+NKV*HS])
		}
		s := make([]float32, NH*int(lens[b]))
		kernels.AttentionDecodeBI(want[b*NH*HS:(b+1)*NH*HS], q[b*NH*HS:(b+1)*NH*HS], c, int(lens[b]), NH, s)
	}
	ob := up(t, d, "out", make([]float32, B*NH*HS))
	must(t, d.AttentionDecode(ob, up(t, d, "q", q), up(t, d, "kc", kc), up(t, d, "vc", vc), upI32(t, d, "lens", lens), B, Tmax, NH, NKV, HS))
	sameBits(t, "attention decode", down(t, d, ob, B*NH*HS), want)

	// a key count outside [1, Tmax] is reported by Sync, naming it
	must(t, d.AttentionDecode(ob, up(t, d, "q", q), up(t, d, "kc", kc), up(t, d, "vc", vc), upI32(t, d, "lens", []int32{17, 0}), B, Tmax, NH, NKV, HS))
	if err := d.Sync(); err == nil || !strings.Contains(err.Error(), "attention_decode: key count 0 at row 1 out of range [1,46)") {
		t.Errorf("a key count of 0: Sync = %v", err)
	}
	if err := d.Sync(); err != nil {
		t.Errorf("the device error word was not cleared: %v", err)
	}
}

// TestMatmulBF16: the bf16 batch-invariant GEMM against
// kernels.MatmulForwardBF16, odd K (a padded pair), with subnormals and
// values that round to them.
func TestMatmulBF16(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(23, 24))
	B, C, OC := 67, 131, 77
	inp, w, bias := randn(rng, B*C, 1), randn(rng, OC*C, 0.1), randn(rng, OC, 1)
	inp[5], inp[6], w[7] = 1e-39, -3e-39, 2e-39
	want := make([]float32, B*OC)
	kernels.MatmulForwardBF16(want, inp, kernels.PackWeightBF16(nil, w, OC, C), bias, B)
	wb, err := d.Alloc("w bf16", BF16, OC*C)
	must(t, err)
	defer wb.Free()
	must(t, d.ToBF16(wb, up(t, d, "w", w), OC*C))
	ob := up(t, d, "out", make([]float32, B*OC))
	must(t, d.MatmulForwardBF16(ob, up(t, d, "inp", inp), wb, up(t, d, "bias", bias), B, C, OC))
	sameBits(t, "matmul bf16", down(t, d, ob, B*OC), want)
}

// TestMatmulBF16Backward: MatmulBF16Strided with accumulation, as the
// trainer's CUDA backend runs kernels.MatmulBackwardBF16 (dinp through
// weightᵀ, dweight through doutᵀ read with strides and inpᵀ), gives its
// bits; the gradients start non-zero (the chains continue from them) and
// include subnormals (read as 0).
func TestMatmulBF16Backward(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(25, 26))
	B, C, OC := 37, 131, 77
	inp, w, dout := randn(rng, B*C, 1), randn(rng, OC*C, 0.1), randn(rng, B*OC, 1)
	dinp, dw, db := randn(rng, B*C, 0.5), randn(rng, OC*C, 0.5), randn(rng, OC, 0.5)
	dinp[3], dw[4], dout[5] = 1e-39, -2e-39, 3e-39
	wantI, wantW, wantB := clone(dinp), clone(dw), clone(db)
	kernels.MatmulBackwardBF16(wantI, wantW, wantB, dout, inp, w, B, C, OC)
	transpose := func(x []float32, rows, cols int) []float32 {
		y := make([]float32, len(x))
		for r := range rows {
			for c := range cols {
				y[c*rows+r] = x[r*cols+c]
			}
		}
		return y
	}
	bf := func(name string, x []float32) *Buf {
		b, err := d.Alloc(name, BF16, len(x))
		must(t, err)
		t.Cleanup(b.Free)
		must(t, d.ToBF16(b, up(t, d, name+" f32", x), len(x)))
		return b
	}
	dO := up(t, d, "dout", dout)
	gi, gw, gb := up(t, d, "dinp", dinp), up(t, d, "dweight", dw), up(t, d, "dbias", db)
	must(t, d.BiasBackward(gb, dO, B, OC))
	must(t, d.MatmulBF16Strided(gi, dO, bf("weightT", transpose(w, OC, C)), nil, B, C, OC, OC, 1, true))
	must(t, d.MatmulBF16Strided(gw, dO, bf("inpT", transpose(inp, B, C)), nil, OC, C, B, 1, OC, true))
	sameBits(t, "bf16 backward dinp", down(t, d, gi, B*C), wantI)
	sameBits(t, "bf16 backward dweight", down(t, d, gw, OC*C), wantW)
	sameBits(t, "bf16 backward dbias", down(t, d, gb, OC), wantB)
}

// TestBF16Transpose: ToBF16T gives kernels.BF16 of the transpose, and
// RoundBF16 kernels.BF16Float(kernels.BF16(x)) in place, bit for bit, on
// shapes that are not multiples of the 32×32 tile, with subnormals, NaN
// and ties among the values.
func TestBF16Transpose(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, sh := range [][2]int{{1, 1}, {31, 33}, {67, 130}, {300, 7}} {
		rows, cols := sh[0], sh[1]
		x := randn(rng, rows*cols, 3)
		x[0] = float32(math.NaN())
		if len(x) > 2 {
			x[1] = math.Float32frombits(0x00000123) // subnormal
			x[2] = math.Float32frombits(0x3f808000) // a tie: rounds to even
		}
		xb := up(t, d, "x", x)
		tb, err := d.Alloc("xT", BF16, rows*cols)
		must(t, err)
		must(t, d.ToBF16T(tb, xb, rows, cols))
		got := make([]uint16, rows*cols)
		must(t, d.DownloadBF16(got, tb))
		tb.Free()
		for r := range rows {
			for c := range cols {
				if want := kernels.BF16(x[r*cols+c]); got[c*rows+r] != want {
					t.Fatalf("%dx%d: to_bf16_t[%d,%d] = %#04x, want %#04x", rows, cols, c, r, got[c*rows+r], want)
				}
			}
		}
		must(t, d.RoundBF16(xb, rows*cols))
		want := make([]float32, len(x))
		for i, v := range x {
			want[i] = kernels.BF16Float(kernels.BF16(v))
		}
		sameBits(t, "round_bf16", down(t, d, xb, rows*cols), want)
	}
}

// TestScaleAdd: out += s·x with the product rounded first, and out = s·x,
// as the trainer's CPU loop computes them (float32(s*x[i]), never fused).
func TestScaleAdd(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(23, 24))
	const n = 1000
	out, x, s := randn(rng, n, 1), randn(rng, n, 1), float32(0.3125)
	for _, add := range []bool{true, false} {
		want := make([]float32, n)
		for i := range want {
			p := float32(s * x[i])
			if add {
				want[i] = out[i] + p
			} else {
				want[i] = p
			}
		}
		ob := up(t, d, "out", out)
		must(t, d.ScaleAdd(ob, up(t, d, "x", x), s, n, add))
		sameBits(t, "scale_add", down(t, d, ob, n), want)
	}
}

// TestGemmTiles: the 128×128-tile GEMM gives the 64×64 one's bits (which
// the tests above hold to the CPU's) on products over several tiles in
// both dimensions, K not a multiple of either stage, with transposes,
// accumulation, and a single row.
func TestGemmTiles(t *testing.T) {
	d := openDev(t)
	t.Cleanup(func() { must(t, d.SetGemmTile(64)) })
	rng := rand.New(rand.NewPCG(31, 32))
	for _, s := range []struct{ M, N, K int }{{200, 300, 45}, {1, 129, 17}, {130, 7, 300}} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, acc := range []bool{false, true} {
				a, b, c0 := randn(rng, s.M*s.K, 1), randn(rng, s.K*s.N, 1), randn(rng, s.M*s.N, 1)
				lda, ldb := s.K, s.N
				if tr[0] {
					lda = s.M
				}
				if tr[1] {
					ldb = s.K
				}
				ab, bb := up(t, d, "a", a), up(t, d, "b", b)
				var got [2][]float32
				for i, tile := range []int{64, 128} {
					must(t, d.SetGemmTile(tile))
					cb := up(t, d, "c", c0)
					must(t, d.GemmBI(tr[0], tr[1], s.M, s.N, s.K, ab, lda, bb, ldb, acc, cb, s.N))
					got[i] = down(t, d, cb, s.M*s.N)
				}
				sameBits(t, fmt.Sprintf("gemm %v trans %v acc %v: tile 128 against 64", s, tr, acc), got[1], got[0])
			}
		}
	}
	if err := d.SetGemmTile(96); err == nil || !strings.Contains(err.Error(), "want 64 or 128") {
		t.Errorf("SetGemmTile(96): %v", err)
	}
}
