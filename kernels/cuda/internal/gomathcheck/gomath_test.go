//go:build cgo

package gomathcheck

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"

	"github.com/rljob/rljob/kernels"
)

// goexp ports Go's amd64 math.Exp with its FMA path, which Go takes on a
// CPU with AVX and FMA (math.useFMA).
func needFMA(t *testing.T) {
	if !cpu.X86.HasAVX || !cpu.X86.HasFMA || strings.Contains(os.Getenv("GODEBUG"), "cpu.fma=off") {
		t.Skip("this CPU (or GODEBUG) makes math.Exp take its non-FMA path; the device port follows the FMA one")
	}
}

// size is n, or n/10 under -short (the race-detector run of make test).
func size(n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}

func samples(rng *rand.Rand, n int, lo, hi float64) []float64 {
	n = size(n)
	x := make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*rng.Float64()
	}
	return x
}

func TestExpMatchesGo(t *testing.T) {
	needFMA(t)
	rng := rand.New(rand.NewPCG(1, 2))
	xs := append(samples(rng, 1_000_000, -40, 1), samples(rng, 200_000, -760, 720)...)
	xs = append(xs, 0, math.Copysign(0, -1), 1, -1, 709.78, 709.79, -708.4, -745.1, -745.2, -1e300, 1e300,
		math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64, 1e-300)
	for range size(200_000) { // random bit patterns
		xs = append(xs, math.Float64frombits(rng.Uint64()))
	}
	bad := 0
	for _, x := range xs {
		got, want := Exp(x), math.Exp(x)
		if math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
			if bad++; bad <= 5 {
				t.Errorf("goexp(%v) = %v (%#x), math.Exp = %v (%#x)", x, got, math.Float64bits(got), want, math.Float64bits(want))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d inputs differ", bad, len(xs))
	}
}

func TestLogMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := append(samples(rng, 500_000, 0, 4), samples(rng, 200_000, 1, 1e6)...)
	xs = append(xs, 0, math.Copysign(0, -1), -1, 1, 2, math.Sqrt2/2, math.Nextafter(math.Sqrt2/2, 1),
		math.Nextafter(math.Sqrt2/2, 0), math.Inf(1), math.NaN(), math.MaxFloat64, 5e-324, 1e-310)
	for range size(300_000) {
		xs = append(xs, math.Float64frombits(rng.Uint64()))
	}
	bad := 0
	for _, x := range xs {
		got, want := Log(x), math.Log(x)
		if math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
			if bad++; bad <= 5 {
				t.Errorf("golog(%v) = %v (%#x), math.Log = %v (%#x)", x, got, math.Float64bits(got), want, math.Float64bits(want))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d inputs differ", bad, len(xs))
	}
}

// TestSigmoidMatchesKernels compares x·sigmoid(x) through the port with
// kernels.SwiGLUForward (up = 1), which runs kernels' expf.
func TestSigmoidMatchesKernels(t *testing.T) {
	needFMA(t) // expf's subnormal branch calls math.Exp
	rng := rand.New(rand.NewPCG(5, 6))
	n := size(1_000_000)
	g := make([]float32, n)
	for i := range g {
		g[i] = float32(rng.NormFloat64() * 30)
	}
	copy(g, []float32{0, -0.0, 88.3, 88.4, 89, -87.3, -87.4, -95, -103.9, -104, -200, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1))})
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	want := make([]float32, n)
	kernels.SwiGLUForward(want, g, ones, n)
	bad := 0
	for i, x := range g {
		got := x * Sigmoid(x) * 1
		if math.Float32bits(got) != math.Float32bits(want[i]) && !(got != got && want[i] != want[i]) {
			if bad++; bad <= 5 {
				t.Errorf("x·sigmoid(x) at %v: port %v, kernels %v", x, got, want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d inputs differ", bad, n)
	}
}

// TestExpfMatchesKernels: the port's expf through kernels.Softmax of a
// two-element row {x, 0}: probs[1] = 1/(expf(x)+1) when x ≤ 0.
func TestExpfMatchesKernels(t *testing.T) {
	needFMA(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for range size(200_000) {
		x := -float32(rng.Float64() * 110)
		row := []float32{0, x}
		p := make([]float32, 2)
		kernels.Softmax(p, row, 1, 2, 1)
		e := Expf(x)
		s := 1 + e
		r := 1 / s
		if want := []float32{1 * r, e * r}; p[0] != want[0] || p[1] != want[1] {
			t.Fatalf("softmax({0, %v}): kernels %v, port %v", x, p, want)
		}
	}
}

func TestMaxIsGos(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range [][2]float32{{1, 2}, {2, 1}, {0, float32(math.Copysign(0, -1))}, {float32(math.Copysign(0, -1)), 0},
		{nan, 1}, {1, nan}, {float32(math.Inf(-1)), -3}} {
		got, want := Max(c[0], c[1]), max(c[0], c[1])
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Errorf("max(%v, %v): port %v, Go %v", c[0], c[1], got, want)
		}
	}
}
