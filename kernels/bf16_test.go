package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"testing"
)

// TestBF16Round: BF16 rounds to nearest even, flushes subnormals, keeps
// infinities and quiets NaNs.
func TestBF16Round(t *testing.T) {
	for _, c := range []struct {
		x    float32
		want uint16
	}{
		{1, 0x3f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81},
		{-2.5, 0xc020},
		{1e-40, 0},
		{-1e-40, 0x8000},
		{float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // max float rounds to +Inf
	} {
		if got := BF16(c.x); got != c.want {
			t.Errorf("BF16(%g) = %#x, want %#x", c.x, got, c.want)
		}
	}
	if nan := BF16(float32(math.NaN())); nan&0x7fc0 != 0x7fc0 {
		t.Errorf("BF16(NaN) = %#x, not a quiet NaN", nan)
	}
}

// bf16Kinds lists the bf16 kernels this machine can run: every kernel set,
// and the AVX-512 set both with VDPBF16PS and with its FMA twin.
func bf16Kinds() []struct {
	level  int
	native bool
} {
	var ks []struct {
		level  int
		native bool
	}
	for _, l := range biLevels() {
		ks = append(ks, struct {
			level  int
			native bool
		}{l, false})
		if l == 2 && bf16HasDP {
			ks = append(ks, struct {
				level  int
				native bool
			}{l, true})
		}
	}
	return ks
}

// TestBF16SetsBitIdentical: MatmulForwardBF16 gives the bits of its naive
// specification on every kernel (VDPBF16PS, the AVX-512 and AVX2 FMA
// twins, Go), M and thread count, with and without bias, at shapes with
// odd K and panel tails, on values that cancel and on tiny values whose
// products and sums are subnormal.
func TestBF16SetsBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	native := bf16Native
	defer func() { bf16Native = native }()
	r := rand.New(rand.NewSource(9))
	shapes := []struct{ M, K, N int }{{1, 1, 1}, {1, 7, 33}, {5, 64, 17}, {13, 65, 40}, {sizes(30, 100), sizes(96, 300), sizes(50, 130)}}
	for _, k := range bf16Kinds() {
		useSet(t, k.level)
		bf16Native = k.native
		for _, s := range shapes {
			for _, scale := range []float32{1, 1e-19} {
				inp, w, bias := randSlice(r, s.M*s.K, scale), randSlice(r, s.N*s.K, scale), randSlice(r, s.N, scale*scale)
				if s.K > 2 {
					w[1] = -w[0] * inp[0] / inp[1] // some cancellation
				}
				pw := PackWeightBF16(nil, w, s.N, s.K)
				for _, bs := range [][]float32{nil, bias} {
					want := make([]float32, s.M*s.N)
					naiveMatmulBF16(want, inp, w, bs, s.M, s.K, s.N)
					for _, threads := range []int{1, 3} {
						runtime.GOMAXPROCS(threads)
						got := randSlice(r, s.M*s.N, 1)
						MatmulForwardBF16(got, inp, pw, bs, s.M)
						name := fmt.Sprintf("%s native=%v %dx%dx%d scale=%g bias=%v threads=%d", biLevelName[k.level], k.native, s.M, s.K, s.N, scale, bs != nil, threads)
						assertClose(t, name, got, want, 0, 0)
						// each row alone gives the same bits (batch invariance)
						row := make([]float32, s.N)
						MatmulForwardBF16(row, inp[(s.M-1)*s.K:], pw, bs, 1)
						assertClose(t, name+" last row alone", row, got[(s.M-1)*s.N:], 0, 0)
					}
				}
			}
		}
	}
}

// TestBF16Accuracy: the bf16 product is within bf16's rounding of the
// float64 product of the rounded operands' sources: |err| ≤ 2⁻⁷·Σ|x·w|.
func TestBF16Accuracy(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	M, K, N := 7, 300, 21
	inp, w := randSlice(r, M*K, 1), randSlice(r, N*K, 1)
	out := make([]float32, M*N)
	MatmulForwardBF16(out, inp, PackWeightBF16(nil, w, N, K), nil, M)
	for m := range M {
		for n := range N {
			var s, a float64
			for k := range K {
				p := float64(inp[m*K+k]) * float64(w[n*K+k])
				s += p
				a += math.Abs(p)
			}
			if d := math.Abs(float64(out[m*N+n]) - s); d > a/128 {
				t.Fatalf("out[%d,%d] = %g, float64 %g: error %g > Σ|x·w|/128 = %g", m, n, out[m*N+n], s, d, a/128)
			}
		}
	}
}

// BenchmarkBF16Gemm compares MatmulForwardBF16 with the float32
// MatmulForwardBI on the same shapes (Qwen2.5-0.5B's: hidden 896,
// intermediate 4864) at a training size (M = 512) and decode sizes
// (M = 1, 8, 32), per CPU-second. On a CPU with AVX512_BF16 both bf16
// kernels run: bf16-vdpbf16ps and bf16-fma (the twin), whichever start-up
// chose (BF16Dot).
//
//	go test -run '^$' -bench BF16Gemm ./kernels/
func BenchmarkBF16Gemm(b *testing.B) {
	native := bf16Native
	defer func() { bf16Native = native }()
	type impl struct {
		name   string
		native bool
		bf16   bool
	}
	impls := []impl{{"fp32", false, false}, {"bf16", native, true}}
	if bf16HasDP && biCurLevel == 2 {
		impls = []impl{{"fp32", false, false}, {"bf16-vdpbf16ps", true, true}, {"bf16-fma", false, true}}
	}
	r := rand.New(rand.NewSource(1))
	for _, M := range []int{1, 8, 32, 512} {
		for _, kn := range [][2]int{{896, 896}, {896, 4864}, {4864, 896}} {
			K, N := kn[0], kn[1]
			inp, w, out := randSlice(r, M*K, 1), randSlice(r, N*K, 0.05), make([]float32, M*N)
			p32, p16 := PackWeight(nil, w, N, K), PackWeightBF16(nil, w, N, K)
			for _, im := range impls {
				f := func() { MatmulForwardBI(out, inp, p32, nil, M) }
				if im.bf16 {
					f = func() { MatmulForwardBF16(out, inp, p16, nil, M) }
				}
				b.Run(fmt.Sprintf("%dx%dx%d/%s", M, K, N, im.name), func(b *testing.B) {
					bf16Native = im.native
					f()
					c0 := cpuSeconds()
					for b.Loop() {
						f()
					}
					flop := float64(2*M*K*N) * float64(b.N)
					b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					if cpu := cpuSeconds() - c0; cpu > 0 {
						b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
					}
				})
			}
		}
	}
}

// TestBF16BackwardSetsBitIdentical: MatmulBackwardBF16 gives the bits of
// its naive specification (naiveMatmulBackwardBF16) on every kernel, at
// 1 and 3 threads, accumulating into non-zero gradients, at shapes with
// odd B, C and OC (pairs padded over o and over b) and panel tails; and
// MatmulForwardBF16W equals MatmulForwardBF16 on the packed weight.
func TestBF16BackwardSetsBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	native := bf16Native
	defer func() { bf16Native = native }()
	r := rand.New(rand.NewSource(11))
	shapes := []struct{ B, C, OC int }{{1, 1, 1}, {3, 7, 33}, {17, 64, 5}, {sizes(29, 131), sizes(40, 200), sizes(35, 150)}}
	for _, k := range bf16Kinds() {
		useSet(t, k.level)
		bf16Native = k.native
		for _, s := range shapes {
			dout, inp, w := randSlice(r, s.B*s.OC, 1), randSlice(r, s.B*s.C, 1), randSlice(r, s.OC*s.C, 1)
			di0, dw0, db0 := randSlice(r, s.B*s.C, 1), randSlice(r, s.OC*s.C, 1), randSlice(r, s.OC, 1)
			di0[0], dw0[len(dw0)-1] = 1e-40, -1e-40 // subnormal start values read as 0
			wdi, wdw, wdb := append([]float32(nil), di0...), append([]float32(nil), dw0...), append([]float32(nil), db0...)
			naiveMatmulBackwardBF16(wdi, wdw, wdb, dout, inp, w, s.B, s.C, s.OC)
			fw := make([]float32, s.B*s.OC)
			naiveMatmulBF16(fw, inp, w, db0, s.B, s.C, s.OC)
			for _, threads := range []int{1, 3} {
				runtime.GOMAXPROCS(threads)
				name := fmt.Sprintf("%s native=%v %dx%dx%d threads=%d", biLevelName[k.level], k.native, s.B, s.C, s.OC, threads)
				di, dw, db := append([]float32(nil), di0...), append([]float32(nil), dw0...), append([]float32(nil), db0...)
				MatmulBackwardBF16(di, dw, db, dout, inp, w, s.B, s.C, s.OC)
				assertClose(t, name+" dinp", di, wdi, 0, 0)
				assertClose(t, name+" dweight", dw, wdw, 0, 0)
				assertClose(t, name+" dbias", db, wdb, 0, 0)
				out := make([]float32, s.B*s.OC)
				MatmulForwardBF16W(out, inp, w, db0, s.B, s.C, s.OC)
				assertClose(t, name+" forward", out, fw, 0, 0)
			}
		}
	}
}

// TestBF16BackwardAccuracy: the bf16 gradients are within bf16's
// rounding of the float64 products: |err| ≤ 2⁻⁷·Σ|terms| (the gradient
// check of a bf16 layer; finite differences of a bf16 forward are noise).
func TestBF16BackwardAccuracy(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	B, C, OC := 37, 50, 23
	dout, inp, w := randSlice(r, B*OC, 1), randSlice(r, B*C, 1), randSlice(r, OC*C, 1)
	di, dw := make([]float32, B*C), make([]float32, OC*C)
	MatmulBackwardBF16(di, dw, nil, dout, inp, w, B, C, OC)
	check := func(name string, got float32, terms func(yield func(float64))) {
		var s, a float64
		terms(func(p float64) { s += p; a += math.Abs(p) })
		if d := math.Abs(float64(got) - s); d > a/64 {
			t.Fatalf("%s = %g, float64 %g: error %g > Σ|terms|/64 = %g", name, got, s, d, a/64)
		}
	}
	for b := range B {
		for c := range C {
			check(fmt.Sprintf("dinp[%d,%d]", b, c), di[b*C+c], func(y func(float64)) {
				for o := range OC {
					y(float64(dout[b*OC+o]) * float64(w[o*C+c]))
				}
			})
		}
	}
	for o := range OC {
		for c := range C {
			check(fmt.Sprintf("dweight[%d,%d]", o, c), dw[o*C+c], func(y func(float64)) {
				for b := range B {
					y(float64(dout[b*OC+o]) * float64(inp[b*C+c]))
				}
			})
		}
	}
}

// BenchmarkBF16Backward compares MatmulBackwardBF16 with the float32
// MatmulBackward (dinp and dweight) at the 0.5B shape's MLP matrices for
// 512 tokens, per CPU-second (4·B·C·OC FLOPs per call).
//
//	go test -run '^$' -bench BF16Backward -benchtime 3x ./kernels/
func BenchmarkBF16Backward(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	const B = 512
	for _, co := range [][2]int{{896, 4864}, {4864, 896}} {
		C, OC := co[0], co[1]
		dout, inp, w := randSlice(r, B*OC, 1), randSlice(r, B*C, 1), randSlice(r, OC*C, 0.05)
		di, dw := make([]float32, B*C), make([]float32, OC*C)
		for _, impl := range []struct {
			name string
			f    func()
		}{
			{"fp32", func() { MatmulBackward(di, dw, nil, dout, inp, w, B, C, OC) }},
			{"bf16", func() { MatmulBackwardBF16(di, dw, nil, dout, inp, w, B, C, OC) }},
		} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", B, C, OC, impl.name), func(b *testing.B) {
				impl.f()
				c0 := cpuSeconds()
				for b.Loop() {
					impl.f()
				}
				flop := float64(4*B*C*OC) * float64(b.N)
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := cpuSeconds() - c0; cpu > 0 {
					b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}

// BenchmarkBF16Pack times the conversions of a bf16 step: packing a
// weight (4864, 896) as it is (forward) and transposed (backward), and
// rounding a transposed input into pairs (bf16XRange, one thread), per
// element.
//
//	go test -run '^$' -bench BF16Pack ./kernels/
func BenchmarkBF16Pack(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	const N, K = 4864, 896
	w := randSlice(r, N*K, 1)
	pw := &PackedWeightBF16{}
	x := make([]uint32, N*(K+1)/2)
	for _, tc := range []struct {
		name string
		f    func()
	}{{"rows", func() { PackWeightBF16(pw, w, N, K) }}, {"cols", func() { PackWeightBF16T(pw, w, K, N) }},
		// dW's left operand: doutᵀ of 896 tokens × 4864 outputs (the rows of x are its columns)
		{"xcols", func() { bf16XRange(x, w, K, 1, N, 0, N) }},
		// the same for a 16,320-id slice of the LM head's dlogits, 256 tokens
		{"xcols-head", func() { bf16XRange(x, w, 256, 1, 16320, 0, 16320) }}} {
		b.Run(tc.name, func(b *testing.B) {
			tc.f()
			c0 := cpuSeconds()
			for b.Loop() {
				tc.f()
			}
			n := N * K
			if tc.name == "xcols-head" {
				n = 256 * 16320
			}
			b.ReportMetric((cpuSeconds()-c0)*1e9/float64(b.N*n), "cpu-ns/elem")
		})
	}
}

// TestPackedRows: rows read back from packed weights equal the weight's
// rows (fp32) and their bf16 rounding (bf16), at odd K and panel tails.
func TestPackedRows(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	N, K := 37, 11
	w := randSlice(r, N*K, 1)
	toks := []int32{0, 36, 15, 16, 5}
	got, got16 := make([]float32, len(toks)*K), make([]float32, len(toks)*K)
	PackedRows(got, PackWeight(nil, w, N, K), toks)
	PackedRowsBF16(got16, PackWeightBF16(nil, w, N, K), toks)
	for i, n := range toks {
		for k := range K {
			x := w[int(n)*K+k]
			if got[i*K+k] != x || got16[i*K+k] != BF16Float(BF16(x)) {
				t.Fatalf("row %d col %d: %v / %v, want %v / %v", n, k, got[i*K+k], got16[i*K+k], x, BF16Float(BF16(x)))
			}
		}
	}
}

// TestPackRows: a weight packed 16·k rows at a time (the last piece
// shorter) equals the weight packed at once, fp32 and bf16.
func TestPackRows(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	N, K := 53, 9
	w := randSlice(r, N*K, 1)
	p32, p16 := NewPackedWeight(N, K), NewPackedWeightBF16(N, K)
	for n0 := 0; n0 < N; n0 += 32 {
		n1 := min(N, n0+32)
		p32.PackRows(w[n0*K:n1*K], n0)
		p16.PackRows(w[n0*K:n1*K], n0)
	}
	if want := PackWeight(nil, w, N, K); !slices.Equal(p32.data, want.data) {
		t.Errorf("fp32 weight packed by rows differs from PackWeight")
	}
	if want := PackWeightBF16(nil, w, N, K); !slices.Equal(p16.data, want.data) {
		t.Errorf("bf16 weight packed by rows differs from PackWeightBF16")
	}
}

// BenchmarkBF16Head times the three bf16 GEMMs of one lm_head chunk of
// rows at Qwen2.5-0.5B's shape (V = 151936, C = 896, 55 rows: a 32 MiB
// chunk, the trainer's before it sliced the head by vocabulary): the logits (fwd), dlnf += dlogits·W with W
// packed transposed once (dinp) and dW += dlogitsᵀ·lnf (dW), and the
// transposed packing of W (packT): GFLOP per CPU-second (packT: CPU
// milliseconds).
//
//	go test -run '^$' -bench BF16Head -benchtime 3x ./kernels/
func BenchmarkBF16Head(b *testing.B) {
	const V, C, R = 151936, 896, 55
	r := rand.New(rand.NewSource(1))
	w, lnf, dlog := randSlice(r, V*C, 0.05), randSlice(r, R*C, 1), randSlice(r, R*V, 1e-3)
	logits, dlnf, dw := make([]float32, R*V), make([]float32, R*C), make([]float32, V*C)
	pw, wT, lnfT := PackWeightBF16(nil, w, V, C), PackWeightBF16T(nil, w, V, C), PackWeightBF16T(nil, lnf, R, C)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"fwd", func() { MatmulForwardBF16(logits, lnf, pw, nil, R) }},
		{"dinp", func() { matmulBF16(dlnf, dlog, wT, nil, true, R, V, 1) }},
		{"dW", func() { matmulBF16(dw, dlog, lnfT, nil, true, V, 1, V) }},
		{"packT", func() { PackWeightBF16T(wT, w, V, C) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.f()
			c0 := cpuSeconds()
			for b.Loop() {
				tc.f()
			}
			cpu := cpuSeconds() - c0
			b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/op")
			if flop := float64(2*V*C*R) * float64(b.N); tc.name != "packT" && cpu > 0 {
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(flop/cpu/1e9, "GFLOP/cpu-s")
			}
		})
	}
}

// TestBF16BlockingsBitIdentical: the tiling and K blocking (bf16Tiles,
// the C driver's blocks of kc pairs whose partial sums wait in out) do not
// change a bit: small and large K blocks, tiles along rows or panels, on
// every kernel, forward (with bias, subnormal sums) and accumulating (from
// subnormal start values), against the naive specification.
func TestBF16BlockingsBitIdentical(t *testing.T) {
	native := bf16Native
	defer func() { bf16Native = native }()
	rb, pg, kc, sk := bf16RowBlock, bf16PanelGroup, bf16KC, bf16ShortK
	defer func() { bf16RowBlock, bf16PanelGroup, bf16KC, bf16ShortK = rb, pg, kc, sk }()
	r := rand.New(rand.NewSource(21))
	const M, K, N = 61, 203, 300 // dW: 300 rows, over one block of the transposed conversion
	for _, k := range bf16Kinds() {
		useSet(t, k.level)
		bf16Native = k.native
		for _, bl := range [][4]int{{96, 8, 384, 64}, {20, 2, 1, 64}, {13, 4, 100, 1000}, {7, 8, 64, 0}} {
			bf16RowBlock, bf16PanelGroup, bf16KC, bf16ShortK = bl[0], bl[1], bl[2], bl[3]
			name := fmt.Sprintf("%s native=%v blocking=%v", biLevelName[k.level], k.native, bl)
			for _, scale := range []float32{1, 1e-19} {
				inp, w, bias := randSlice(r, M*K, scale), randSlice(r, N*K, scale), randSlice(r, N, scale*scale)
				want, got := make([]float32, M*N), make([]float32, M*N)
				naiveMatmulBF16(want, inp, w, bias, M, K, N)
				MatmulForwardBF16(got, inp, PackWeightBF16(nil, w, N, K), bias, M)
				assertClose(t, fmt.Sprintf("%s scale=%g forward", name, scale), got, want, 0, 0)
			}
			dout, inp, w := randSlice(r, M*N, 1), randSlice(r, M*K, 1), randSlice(r, N*K, 1)
			di0, dw0 := randSlice(r, M*K, 1), randSlice(r, N*K, 1)
			di0[0], dw0[len(dw0)-1] = 1e-40, -1e-40
			wdi, wdw := slices.Clone(di0), slices.Clone(dw0)
			naiveMatmulBackwardBF16(wdi, wdw, nil, dout, inp, w, M, K, N)
			di, dw := slices.Clone(di0), slices.Clone(dw0)
			MatmulBackwardBF16(di, dw, nil, dout, inp, w, M, K, N)
			assertClose(t, name+" dinp", di, wdi, 0, 0)
			assertClose(t, name+" dweight", dw, wdw, 0, 0)
		}
	}
}

// TestBF16KernelShapes: every register block of every bf16 kernel (rows
// 1..12 of the AVX-512 FMA twin, with each panel count and a panel tail)
// gives the bits of the naive specification, with K odd.
func TestBF16KernelShapes(t *testing.T) {
	native := bf16Native
	defer func() { bf16Native = native }()
	r := rand.New(rand.NewSource(31))
	const K = 37
	for _, k := range bf16Kinds() {
		useSet(t, k.level)
		bf16Native = k.native
		for M := 1; M <= 25; M++ {
			for np := 1; np <= 9; np++ {
				N := 16*np - 3
				inp, w, bias := randSlice(r, M*K, 1), randSlice(r, N*K, 1), randSlice(r, N, 1)
				want, got := make([]float32, M*N), make([]float32, M*N)
				naiveMatmulBF16(want, inp, w, bias, M, K, N)
				MatmulForwardBF16(got, inp, PackWeightBF16(nil, w, N, K), bias, M)
				assertClose(t, fmt.Sprintf("%s native=%v M=%d N=%d", biLevelName[k.level], k.native, M, N), got, want, 0, 0)
			}
		}
	}
}
