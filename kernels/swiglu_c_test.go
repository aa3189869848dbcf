//go:build cgo && amd64

package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"
)

// TestSwiGLUCMatchesGo: the C (AVX-512/AVX2) SwiGLU loops give the same
// bits as the pure-Go ones, on ordinary values and on the edges of expf's
// range (saturated sigmoid, ±Inf, NaN), at lengths that leave vector tails.
func TestSwiGLUCMatchesGo(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	edges := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 87.33654, -87.33654, 87.34, -87.34,
		88.37626, -88.37626, 88.4, -88.4, 100, -100, 104, -104, 200, -200,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3.4e38, -3.4e38}
	cases := []struct {
		name  string
		n     int
		scale float32
		edges bool
	}{
		{"small", 7, 3, false},
		{"typical", 4099, 4, false},
		{"wide", 1000, 60, false},
		{"edges", 0, 1, true},
		{"edges-mixed", 517, 5, true},
	}
	top := swigluLevel(-1)
	defer swigluLevel(top)
	for level := top; level >= 0; level-- {
		if swigluLevel(level) != level {
			t.Fatalf("cannot select SwiGLU loop set %d", level)
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("level%d/%s", level, tc.name), func(t *testing.T) {
				gate := randSlice(r, tc.n, tc.scale)
				if tc.edges {
					for _, e := range edges {
						gate = slices.Insert(gate, r.Intn(len(gate)+1), e)
					}
				}
				n := len(gate)
				up, dout := randSlice(r, n, 2), randSlice(r, n, 1)
				oc, og := make([]float32, n), make([]float32, n)
				swigluFwdRange(oc, gate, up)
				swigluFwdRangeGo(og, gate, up)
				if !slices.Equal(bits(oc), bits(og)) {
					t.Errorf("forward differs from Go")
				}
				dgc, dgg := randSlice(r, n, 1), make([]float32, n)
				duc, dug := randSlice(r, n, 1), make([]float32, n)
				copy(dgg, dgc)
				copy(dug, duc)
				swigluBwdRange(dgc, duc, dout, gate, up)
				swigluBwdRangeGo(dgg, dug, dout, gate, up)
				if !slices.Equal(bits(dgc), bits(dgg)) || !slices.Equal(bits(duc), bits(dug)) {
					t.Errorf("backward differs from Go")
				}
			})
		}
	}
}

// BenchmarkSwiGLURange compares the C and Go SwiGLU loops, one goroutine.
func BenchmarkSwiGLURange(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	n := 1 << 16
	gate, up, dout := randSlice(r, n, 3), randSlice(r, n, 1), randSlice(r, n, 1)
	out, dg, du := make([]float32, n), make([]float32, n), make([]float32, n)
	for _, c := range []struct {
		name string
		fwd  func(out, gate, up []float32)
		bwd  func(dgate, dup, dout, gate, up []float32)
	}{{"c", swigluFwdRange, swigluBwdRange}, {"go", swigluFwdRangeGo, swigluBwdRangeGo}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.fwd(out, gate, up)
				c.bwd(dg, du, dout, gate, up)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
		})
	}
}
