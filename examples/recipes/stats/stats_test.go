package stats

import (
	"strings"
	"testing"
)

func TestQuantileType7(t *testing.T) {
	xs := []float64{1, 2, 3, 4}
	for _, c := range []struct{ q, want float64 }{
		{0, 1}, {1, 4}, {0.5, 2.5}, // position q·3: 1.5 → halfway between 2 and 3
		{0.025, 1.075}, // position 0.075
		{0.975, 3.925}, // position 2.925
	} {
		if got := Quantile(xs, c.q); !near(got, c.want) {
			t.Errorf("Quantile(%v, %g) = %g, want %g", xs, c.q, got, c.want)
		}
	}
}

func TestBootstrapConstant(t *testing.T) {
	iv, err := Bootstrap([]float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if !near(iv.Mean, 0.1) || !near(iv.Lo, 0.1) || !near(iv.Hi, 0.1) || iv.N != 8 {
		t.Fatalf("constant values: %+v, want mean = lo = hi = 0.1, n 8", iv)
	}
}

// Eight values ±1 (mean 0): a resample's mean is (2j − 8)/8 with j ~
// Binomial(8, 1/2) plus ones drawn. P(j ≤ 0) = 1/256 = 0.004 and P(j ≤ 1) =
// 9/256 = 0.035, so the 2.5% quantile of the resample means is j = 1, a
// mean of −0.75; by symmetry the 97.5% quantile is +0.75. With 10,000
// resamples the empirical quantiles land there unless the empirical CDF
// strays by more than 0.01 from 0.004 or 0.035 (about 3 or 5 standard
// errors).
func TestBootstrapPlusMinusOne(t *testing.T) {
	xs := []float64{-1, 1, -1, 1, -1, 1, -1, 1}
	iv, err := Bootstrap(xs)
	if err != nil {
		t.Fatal(err)
	}
	if !near(iv.Mean, 0) || !near(iv.Lo, -0.75) || !near(iv.Hi, 0.75) {
		t.Fatalf("±1 × 8: %+v, want mean 0, interval [-0.75, 0.75]", iv)
	}
	again, _ := Bootstrap(xs)
	if again != iv {
		t.Fatalf("not deterministic: %+v then %+v", iv, again)
	}
}

// Two values {0, 1}: resample means 0, 0.5, 1 with probabilities 1/4, 1/2,
// 1/4, so the 2.5% and 97.5% quantiles are 0 and 1.
func TestBootstrapTwoValues(t *testing.T) {
	iv, err := Bootstrap([]float64{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !near(iv.Mean, 0.5) || !near(iv.Lo, 0) || !near(iv.Hi, 1) || iv.N != 2 {
		t.Fatalf("{0, 1}: %+v, want mean 0.5, interval [0, 1]", iv)
	}
}

func TestBootstrapErrors(t *testing.T) {
	if _, err := Bootstrap(nil); err == nil {
		t.Error("no values: want an error")
	}
}

func TestReadPerSeed(t *testing.T) {
	p, err := ReadPerSeed(strings.NewReader("arm,seed,metric,value\nb,2,pass@1,0.5\nb,1,pass@1,0.25\na,1,pass@1,0.125\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Arms, " ") != "b a" {
		t.Errorf("arms %v, want first-seen order b a", p.Arms)
	}
	if v := p.Values("b", "pass@1"); len(v) != 2 || v[0] != 0.25 || v[1] != 0.5 {
		t.Errorf("b's pass@1 by seed = %v, want [0.25 0.5]", v)
	}
	for _, c := range []struct{ in, want string }{
		{"arm,seed,value\n", "line 1"},
		{"arm,seed,metric,value\na,x,pass@1,1\n", "line 2: seed"},
		{"arm,seed,metric,value\na,1,pass@1,y\n", "line 2: value"},
		{"arm,seed,metric,value\na,1,pass@1,1\na,1,pass@1,2\n", "line 3: arm a, seed 1, metric pass@1 given twice"},
		{"arm,seed,metric,value\n", "no rows"},
	} {
		_, err := ReadPerSeed(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.in, err, c.want)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }
