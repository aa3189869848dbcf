// Package stats holds the statistics of make compare's verdicts and charts
// (examples/recipes/verdict, examples/recipes/chart): the mean of per-seed
// values and its 95% percentile bootstrap interval over seeds.
//
// The bootstrap: Resamples (10,000) resamples of the n values drawn with
// replacement, each resample's mean, and the 2.5th and 97.5th percentiles of
// those means (linear interpolation between order statistics, R's type 7).
// The random numbers come from math/rand/v2's PCG seeded with the fixed
// RNGSeed, reseeded for every interval, so an interval depends only on its
// values (not on which intervals were computed before it) and the same
// input gives the same output on every machine.
package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
)

// Resamples is the number of bootstrap resamples of every interval.
const Resamples = 10000

// RNGSeed seeds the PCG generator (both of its words) of every interval.
const RNGSeed = 20250622

// Interval is a mean with its 95% percentile bootstrap interval [Lo, Hi]
// over N values.
type Interval struct {
	Mean, Lo, Hi float64
	N            int
}

// Mean is the arithmetic mean of xs (NaN when empty).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Bootstrap returns the mean of xs with its 95% percentile bootstrap
// interval (see the package comment). One value gives the interval [x, x].
func Bootstrap(xs []float64) (Interval, error) {
	if len(xs) == 0 {
		return Interval{}, errors.New("stats: bootstrap of no values")
	}
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return Interval{}, errors.New("stats: bootstrap of a NaN or infinite value")
		}
	}
	rng := rand.New(rand.NewPCG(RNGSeed, RNGSeed))
	n := len(xs)
	means := make([]float64, Resamples)
	for b := range means {
		s := 0.0
		for range n {
			s += xs[rng.IntN(n)]
		}
		means[b] = s / float64(n)
	}
	sort.Float64s(means)
	return Interval{Mean: Mean(xs), Lo: Quantile(means, 0.025), Hi: Quantile(means, 0.975), N: n}, nil
}

// Quantile is the q-quantile of the sorted values xs by linear
// interpolation between order statistics (R's type 7: position q·(n−1)).
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i] + f*(sorted[i+1]-sorted[i])
}
