package kernels

import (
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestGoExpIsMathExp: goExp has math.Exp's bits where math.Exp takes its
// FMA path (an x86-64 with AVX and FMA), over the softmax's range and the
// edges: underflow to 0, denormal results, overflow, NaN and ±Inf.
func TestGoExpIsMathExp(t *testing.T) {
	if !mathExpHasFMAPath() {
		t.Skip("math.Exp takes its FMA path only on amd64 with AVX and FMA; this CPU lacks them")
	}
	check := func(x float64) {
		t.Helper()
		got, want := goExp(x), math.Exp(x)
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("goExp(%v) = %v (%#x), math.Exp %v (%#x)", x, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, -745.1, -745.2, -708.4, -708.3, -720, -1e10, -1e300,
		709.78, 709.79, 710, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64, -math.MaxFloat64} {
		check(x)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		check(-rng.Float64() * 40)                              // softmax range: x = z − max ≤ 0
		check(float64(float32(rng.NormFloat64() * 20)))         // float32-valued
		check((rng.Float64()*2 - 1) * 760)                      // the whole finite range and past it
		check(-745 + rng.Float64()*40)                          // denormal results
		check(math.Float64frombits(rng.Uint64()&^(1<<63)) * -1) // any negative bits
	}
}

// mathExpHasFMAPath reports whether math.Exp takes its FMA path here: an
// x86-64 with AVX and FMA, not switched off with GODEBUG (as make test
// does to stand in for a CPU without them).
func mathExpHasFMAPath() bool {
	return runtime.GOARCH == "amd64" && cpu.X86.HasAVX && cpu.X86.HasFMA && !strings.Contains(os.Getenv("GODEBUG"), "cpu.fma=off")
}
