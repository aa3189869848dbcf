package trainer

import (
	"math"
	"testing"
)

// TestExpf: within 3 ulp of math.Exp over the range softmax uses, exact at
// 0, and the edge cases.
func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88; x += 0.0137 {
		want := float32(math.Exp(float64(x)))
		got := expf(x)
		ulp := float64(math.Nextafter32(want, float32(math.Inf(1))) - want)
		if d := math.Abs(float64(got-want)) / ulp; d > worst {
			worst = d
		}
	}
	if worst > 3 {
		t.Errorf("max error %.2f ulp, want ≤ 3", worst)
	}
	t.Logf("max error %.2f ulp", worst)
	for _, tc := range []struct {
		name string
		x    float32
		want float32
	}{
		{"zero", 0, 1},
		{"underflow", -100, 0},
		{"-inf", float32(math.Inf(-1)), 0},
		{"overflow", 100, float32(math.Inf(1))},
	} {
		if got := expf(tc.x); got != tc.want {
			t.Errorf("%s: expf(%v) = %v, want %v", tc.name, tc.x, got, tc.want)
		}
	}
	if x := expf(float32(math.NaN())); x == x {
		t.Errorf("expf(NaN) = %v", x)
	}
}
