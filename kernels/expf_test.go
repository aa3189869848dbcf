package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// TestExpf: expf within 2 float32 ulps (relative 2.4e-7) of exp on random
// and edge inputs, exact 0 / +Inf / NaN at the ends.
func TestExpf(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	xs := []float32{0, 1, -1, 0.5, -0.34657359, 0.34657359, 10, -10, 50, -50, 80, -80,
		88.3, 88.37, 88.38, 88.5, 88.72, 88.73, 100, -87.3, -87.4, -100, -103.9, -104, -1e6, 1e6,
		float32(math.Inf(-1)), float32(math.Inf(1))}
	for i := 0; i < sizes(20000, 1000000); i++ {
		xs = append(xs, (r.Float32()*2-1)*90)
	}
	for _, x := range xs {
		got := float64(expf(x))
		want := float64(float32(math.Exp(float64(x))))
		if got == want {
			continue
		}
		tol := 2.4e-7 * want
		if want < 1.2e-38 { // subnormal results: absolute
			tol = 1.5e-45
		}
		if math.Abs(got-want) > tol {
			t.Errorf("expf(%v) = %v, want %v", x, got, want)
		}
	}
	if x := expf(float32(math.NaN())); x == x {
		t.Errorf("expf(NaN) = %v, want NaN", x)
	}
}

func BenchmarkExp(b *testing.B) {
	xs := make([]float32, 4096)
	r := rand.New(rand.NewSource(1))
	for i := range xs {
		xs[i] = -r.Float32() * 20
	}
	var s float32
	b.Run("expf", func(b *testing.B) {
		c0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			for _, x := range xs {
				s += expf(x)
			}
		}
		reportCPUPer(b, c0, float64(b.N*len(xs)), "cpu-ns/exp")
	})
	b.Run("math.Exp", func(b *testing.B) {
		c0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			for _, x := range xs {
				s += float32(math.Exp(float64(x)))
			}
		}
		reportCPUPer(b, c0, float64(b.N*len(xs)), "cpu-ns/exp")
	})
	sink = s
}

var sink float32

// reportCPUPer reports CPU nanoseconds per item since c0 (see cpuSeconds).
func reportCPUPer(b *testing.B, c0, items float64, unit string) {
	b.Helper()
	if cpu := cpuSeconds() - c0; cpu > 0 {
		b.ReportMetric(cpu*1e9/items, unit)
	}
}
