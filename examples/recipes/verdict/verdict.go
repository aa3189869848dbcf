package main

import (
	"fmt"

	"github.com/rljob/rljob/examples/recipes/stats"
)

// MinSeeds is the rule's minimum number of paired seeds for a verdict.
const MinSeeds = 8

// The verdicts.
const (
	Reproduced   = "reproduced"
	Contradicted = "contradicted"
	Inconclusive = "inconclusive"
	FewSeeds     = "inconclusive (n < 8)"
)

// result is a finding measured: the paired differences A − B over the
// seeds both arms have, their mean and bootstrap interval, and the verdict
// (Missing names what was not run; then there is no interval).
type result struct {
	finding
	Seeds   []int
	Diffs   []float64
	IV      stats.Interval
	Verdict string
	Missing string
}

// rule is the verdict rule stated in examples/recipes/README.md: with fewer
// than MinSeeds paired seeds no verdict; otherwise reproduced when the 95%
// interval excludes 0 in the paper's direction (dir), contradicted when it
// excludes 0 the other way, inconclusive when it contains 0 (an end at
// exactly 0 does not exclude it).
func rule(iv stats.Interval, dir int) string {
	if iv.N < MinSeeds {
		return FewSeeds
	}
	lo, hi := iv.Lo*float64(dir), iv.Hi*float64(dir)
	if dir < 0 {
		lo, hi = hi, lo
	}
	switch {
	case lo > 0:
		return Reproduced
	case hi < 0:
		return Contradicted
	}
	return Inconclusive
}

// measure computes f's result from the per-seed values: paired by seed.
func measure(p *stats.PerSeed, f finding) (result, error) {
	r := result{finding: f}
	for _, arm := range []string{f.A, f.B} {
		if len(p.Seeds(arm, f.Metric)) == 0 {
			r.Missing = fmt.Sprintf("no %s of arm %s", f.Metric, arm)
			r.Verdict = "not run"
			return r, nil
		}
	}
	for _, s := range p.Seeds(f.A, f.Metric) {
		b, ok := p.Value(f.B, f.Metric, s)
		if !ok {
			continue
		}
		a, _ := p.Value(f.A, f.Metric, s)
		r.Seeds = append(r.Seeds, s)
		r.Diffs = append(r.Diffs, a-b)
	}
	if len(r.Diffs) == 0 {
		r.Missing = fmt.Sprintf("arms %s and %s share no seed", f.A, f.B)
		r.Verdict = "not run"
		return r, nil
	}
	iv, err := stats.Bootstrap(r.Diffs)
	if err != nil {
		return r, fmt.Errorf("finding %s: %w", f.ID, err)
	}
	r.IV = iv
	r.Verdict = rule(iv, f.Dir)
	return r, nil
}
