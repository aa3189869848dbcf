package kernels

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

// randSlice returns n values uniform in [-scale, scale) from r.
func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = (r.Float32()*2 - 1) * scale
	}
	return x
}

// assertClose fails unless |got-want| <= atol + rtol*|want| element-wise
// (llm.c's check), reporting the worst element.
func assertClose(t *testing.T, name string, got, want []float32, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	worst, wi := 0.0, -1
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			t.Fatalf("%s[%d] = %v (want %v)", name, i, g, w)
		}
		excess := math.Abs(g-w) - (atol + rtol*math.Abs(w))
		if excess > worst || wi < 0 && excess > 0 {
			worst, wi = excess, i
		}
	}
	if wi >= 0 && worst > 0 {
		t.Fatalf("%s[%d] = %v, want %v (|diff| exceeds atol=%g + rtol=%g·|want| by %g)", name, wi, got[wi], want[wi], atol, rtol, worst)
	}
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
