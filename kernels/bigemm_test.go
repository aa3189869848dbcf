package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"runtime"
	"testing"
)

// fma32Big is a·b + c computed exactly and rounded once to float32.
func fma32Big(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// hazardFMAs are a·b + c whose float64 rounding lands exactly on the
// midpoint between two float32s: a·b = 2^-24·(1 − i²·2^-46) and c =
// 1 + 2^-23, so the exact sum is just below 1 + 3·2^-24, rounds to it in
// float64, and ties-to-even then rounds up to 1 + 2^-22 instead of down
// to 1 + 2^-23. float32(math.FMA(a, b, c)) is wrong on all of them.
func hazardFMAs() []fmaCase {
	var cs []fmaCase
	for i := 1; i < 300; i += 7 {
		d := float64(i) * 0x1p-23
		a, b := float32(0x1p-12*(1+d)), float32(0x1p-12*(1-d))
		cs = append(cs, fmaCase{a, b, 1 + 0x1p-23}, fmaCase{-a, b, -(1 + 0x1p-23)})
	}
	return cs
}

type fmaCase struct{ a, b, c float32 }

func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	type tc = fmaCase
	for _, c := range hazardFMAs() {
		if d := float32(math.FMA(float64(c.a), float64(c.b), float64(c.c))); d == fma32Big(c.a, c.b, c.c) {
			t.Fatalf("hazard case %v is not one: float64 FMA rounds correctly", c)
		}
	}
	cases := []tc{
		{3, 5, -15},
		{1e-30, 1e-30, 0},                   // float32 underflow
		{1e-20, 1e-20, 1e-38},               // subnormal range
		{3e38, 10, -3e38},                   // overflow
		{float32(math.Inf(1)), 1, 1},        // inf
		{-0.0, 1, 0},                        // signed zeros
		{0x1.fffffep0, 0x1.fffffep0, -4},    // cancellation
		{0x1.000002p0, 0x1.fffffcp-1, -1.0}, // exact small result
	}
	cases = append(cases, hazardFMAs()...)
	for range 20000 {
		e := func() float32 { return float32(math.Ldexp(r.Float64()*2-1, r.Intn(80)-40)) }
		cases = append(cases, tc{e(), e(), e()})
	}
	for i, c := range cases {
		want := fma32Big(c.a, c.b, c.c)
		for name, got := range map[string]float32{"fma32": fma32(c.a, c.b, c.c), "fma32Exact": fma32Exact(c.a, c.b, c.c)} {
			if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
				t.Fatalf("case %d %s(%g, %g, %g) = %g (%#x), want %g (%#x)", i, name, c.a, c.b, c.c, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// biLevels lists the kernel sets this machine can run: always Go (0), then
// AVX2 (1) and AVX-512 (2) when present.
func biLevels() []int {
	ls := []int{0}
	for l := 1; l <= biDetectedLevel; l++ {
		ls = append(ls, l)
	}
	return ls
}

var biLevelName = [...]string{"go", "avx2", "avx512"}

// TestBIGemm: MatmulForwardBI gives the bits of its naive specification
// (one FMA chain per element) for every M, thread count and kernel set,
// and each row equals the same row computed alone; and it is within 1e-5
// of a float64 product, relative to Σ_k |inp·w| + |bias|.
func TestBIGemm(t *testing.T) {
	defer biLevel(biDetectedLevel)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewSource(2))
	shapes := []struct{ K, N int }{{1, 1}, {37, 45}, {64, 16}, {256, 256}, {100, 130}, {704, 40}}
	for _, sh := range shapes {
		K, N := sh.K, sh.N
		const Mmax = 100
		inp := randSlice(r, Mmax*K, 1)
		w := randSlice(r, N*K, 0.5)
		bias := randSlice(r, N, 0.5)
		pw := PackWeight(nil, w, N, K)
		for _, withBias := range []bool{false, true} {
			var b []float32
			if withBias {
				b = bias
			}
			spec := make([]float32, Mmax*N)
			naiveMatmulForwardBI(spec, inp, w, b, Mmax, K, N)
			// float64 twin
			for m := range Mmax {
				for n := range N {
					s, mag := 0.0, 0.0
					if b != nil {
						s, mag = float64(b[n]), math.Abs(float64(b[n]))
					}
					for k := range K {
						p := float64(inp[m*K+k]) * float64(w[n*K+k])
						s += p
						mag += math.Abs(p)
					}
					if d := math.Abs(float64(spec[m*N+n]) - s); d > 1e-5*mag+1e-30 {
						t.Fatalf("K=%d N=%d: out[%d,%d] = %v, float64 %v (|diff| %g > 1e-5·%g)", K, N, m, n, spec[m*N+n], s, d, mag)
					}
				}
			}
			for _, level := range biLevels() {
				if got := biLevel(level); got != level {
					t.Fatalf("biLevel(%d) = %d", level, got)
				}
				for _, threads := range []int{1, 2, 4} {
					runtime.GOMAXPROCS(threads)
					for _, M := range []int{1, 7, 32, 100} {
						name := fmt.Sprintf("%s/K=%d/N=%d/bias=%v/threads=%d/M=%d", biLevelName[level], K, N, withBias, threads, M)
						// rows taken from an offset so that M=1 is not always row 0
						off := (Mmax - M) / 2
						out := make([]float32, M*N)
						for i := range out {
							out[i] = float32(math.NaN())
						}
						MatmulForwardBI(out, inp[off*K:(off+M)*K], pw, b, M)
						if err := sameBits(out, spec[off*N:(off+M)*N]); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
					}
				}
			}
		}
	}
}

// TestBIGemmRounding: with K = 1 each output is one FMA of bias, inp and
// w; every kernel set rounds it once, as the hardware FMA does, also on
// the cases where two roundings differ.
func TestBIGemmRounding(t *testing.T) {
	defer biLevel(biDetectedLevel)
	cs := hazardFMAs()
	N := len(cs)
	// inp (N, 1) = a, w (N, 1) = b: out[i,i] = fma(a_i, b_i, bias_i)
	inp, w, bias := make([]float32, N), make([]float32, N), make([]float32, N)
	for i, c := range cs {
		inp[i], w[i], bias[i] = c.a, c.b, c.c
	}
	pw := PackWeight(nil, w, N, 1)
	out := make([]float32, N*N)
	for _, level := range biLevels() {
		biLevel(level)
		MatmulForwardBI(out, inp, pw, bias, N)
		for i, c := range cs {
			if got, want := out[i*N+i], fma32Big(c.a, c.b, c.c); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s: fma(%g, %g, %g) = %#x, want %#x", biLevelName[level], c.a, c.b, c.c, math.Float32bits(got), math.Float32bits(want))
			}
		}
	}
}

// TestMatmulForwardInvariant: the unpacked entry point equals the packed
// one (and so the specification), with a weight reused across calls.
func TestMatmulForwardInvariant(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, sh := range [][3]int{{5, 33, 17}, {40, 64, 96}, {1, 256, 512}} {
		B, C, OC := sh[0], sh[1], sh[2]
		inp, w, bias := randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)
		got, want := make([]float32, B*OC), make([]float32, B*OC)
		MatmulForwardInvariant(got, inp, w, bias, B, C, OC)
		naiveMatmulForwardBI(want, inp, w, bias, B, C, OC)
		if err := sameBits(got, want); err != nil {
			t.Fatalf("%v: %v", sh, err)
		}
	}
}

// TestPackWeight: the C packer (AVX transposes) and the Go loop write the
// same layout, on shapes with row and column tails.
func TestPackWeight(t *testing.T) {
	defer biLevel(biDetectedLevel)
	r := rand.New(rand.NewSource(6))
	for _, sh := range [][2]int{{1, 1}, {16, 8}, {33, 17}, {50, 64}, {7, 100}} {
		N, K := sh[0], sh[1]
		w := randSlice(r, N*K, 1)
		var want *PackedWeight
		for _, level := range biLevels() {
			biLevel(level)
			pw := &PackedWeight{data: randSlice(r, 2*N*K+64, 1)} // stale content must not leak
			PackWeight(pw, w, N, K)
			for p := range pw.panels() {
				for k := range K {
					for j := range biPanel {
						n, x := p*biPanel+j, pw.data[p*pw.ps+k*biPanel+j]
						if (n < N && x != w[n*K+k]) || (n >= N && x != 0) {
							t.Fatalf("%s N=%d K=%d: panel %d k %d j %d = %v", biLevelName[level], N, K, p, k, j, x)
						}
					}
				}
			}
			if want == nil {
				want = pw
			} else if err := sameBits(pw.data, want.data); err != nil {
				t.Fatalf("%s N=%d K=%d: %v", biLevelName[level], N, K, err)
			}
		}
	}
}

func TestPackWeightT(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	K, N := 23, 37
	w := randSlice(r, N*K, 1)
	wt := make([]float32, K*N)
	for n := range N {
		for k := range K {
			wt[k*N+n] = w[n*K+k]
		}
	}
	a, b := PackWeight(nil, w, N, K), PackWeightT(nil, wt, K, N)
	if err := sameBits(a.data, b.data); err != nil {
		t.Fatal(err)
	}
}

func sameBits(got, want []float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("len %d, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return fmt.Errorf("element %d = %v (%#x), want %v (%#x)", i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
	return nil
}
