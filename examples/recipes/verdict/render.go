package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rljob/rljob/examples/recipes/stats"
)

// inPoints says whether a metric is a rate shown in points (× 100).
func inPoints(metric string) bool {
	for _, p := range []string{"pass@", "coverage@", "greedy"} {
		if strings.HasPrefix(metric, p) {
			return true
		}
	}
	return false
}

// signed formats a difference: points with one decimal for rates, else %+.3g.
func signed(metric string, v float64) string {
	if inPoints(metric) {
		return fmt.Sprintf("%+.1f", 100*v)
	}
	return fmt.Sprintf("%+.3g", v)
}

// findingsTable is the markdown table of the results, one row per finding.
func findingsTable(rs []result) string {
	var b strings.Builder
	b.WriteString("| finding | paper | metric | arms (A − B) | effect | 95% interval | seeds | verdict |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		dir := "> 0"
		if r.Dir < 0 {
			dir = "< 0"
		}
		unit := ""
		if inPoints(r.Metric) {
			unit = " pts"
		}
		effect, iv, seeds, verdict := "—", "—", "0", r.Verdict
		if r.Missing != "" {
			verdict = "not run (" + r.Missing + ")"
		} else {
			effect = signed(r.Metric, r.IV.Mean) + unit
			iv = "[" + signed(r.Metric, r.IV.Lo) + ", " + signed(r.Metric, r.IV.Hi) + "]"
			seeds = strconv.Itoa(r.IV.N)
		}
		if verdict == Reproduced || verdict == Contradicted {
			verdict = "**" + verdict + "**"
		}
		fmt.Fprintf(&b, "| %s %s | %s, arXiv:%s | %s | %s − %s %s | %s | %s | %s | %s |\n",
			r.ID, r.Claim, r.Paper, r.Arxiv, r.Metric, r.A, r.B, dir, effect, iv, seeds, verdict)
	}
	return b.String()
}

// tally counts the verdicts: "N findings: a reproduced, b contradicted, ...".
func tally(rs []result) string {
	n := map[string]int{}
	for _, r := range rs {
		n[r.Verdict]++
	}
	return fmt.Sprintf("%d findings: %d reproduced, %d contradicted, %d inconclusive, %d inconclusive (n < 8), %d not run.",
		len(rs), n[Reproduced], n[Contradicted], n[Inconclusive], n[FewSeeds], n["not run"])
}

// crossing is the pass@k-against-k comparison of arms a (the start) and b
// (RL): per k the means and the paired difference a − b with its interval,
// and the smallest k where the mean difference is ≥ 0 (the crossing point).
func crossing(p *stats.PerSeed, a, b string) (string, error) {
	ks := p.LargeKs(a)
	if len(ks) == 0 {
		return fmt.Sprintf("Crossing point of %s and %s: not measured (no pass@k@N rows of %s).\n", a, b, a), nil
	}
	var t strings.Builder
	t.WriteString("| k | " + a + " | " + b + " | " + a + " − " + b + " (pts) | 95% interval | seeds |\n|---|---|---|---|---|---|\n")
	cross, crossN := 0, ""
	for _, lk := range ks {
		k, m := lk.K, lk.Metric
		r, err := measure(p, finding{ID: m, Metric: m, A: a, B: b, Dir: 1})
		if err != nil {
			return "", err
		}
		if r.Missing != "" {
			continue
		}
		if cross == 0 && r.IV.Mean >= 0 {
			cross, crossN = k, lk.N
		}
		fmt.Fprintf(&t, "| %d | %.3f | %.3f | %s | [%s, %s] | %d |\n", k,
			meanAt(p, a, m, r.Seeds), meanAt(p, b, m, r.Seeds), signed(m, r.IV.Mean), signed(m, r.IV.Lo), signed(m, r.IV.Hi), r.IV.N)
	}
	head := fmt.Sprintf("Crossing point (F8): no k ≤ %d where %s's mean pass@k reaches %s's.", ks[len(ks)-1].K, a, b)
	if cross > 0 {
		head = fmt.Sprintf("Crossing point (F8): k = %d, the smallest k where %s's mean pass@k (n = %s samples per prompt) is at least %s's.", cross, a, crossN, b)
	}
	return head + "\n\n" + t.String(), nil
}

// meanAt is arm's mean of metric over the given seeds.
func meanAt(p *stats.PerSeed, arm, metric string, seeds []int) float64 {
	var xs []float64
	for _, s := range seeds {
		v, _ := p.Value(arm, metric, s)
		xs = append(xs, v)
	}
	return stats.Mean(xs)
}

// armsTable is per arm the mean over seeds of the contract's metrics, with
// 95% bootstrap intervals for the rates.
func armsTable(p *stats.PerSeed) (string, error) {
	cols := []string{"pass@1", "pass@16", "greedy", "pass@256@512", "coverage@512", "rollouts", "updates"}
	var b strings.Builder
	b.WriteString("| arm | seeds | " + strings.Join(cols, " | ") + " |\n|---|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, arm := range p.Arms {
		row := []string{arm, strconv.Itoa(len(p.Seeds(arm, "pass@1")))}
		for _, c := range cols {
			xs := p.Values(arm, c)
			if len(xs) == 0 {
				row = append(row, "—")
				continue
			}
			if !inPoints(c) {
				row = append(row, strconv.FormatFloat(stats.Mean(xs), 'f', 0, 64))
				continue
			}
			iv, err := stats.Bootstrap(xs)
			if err != nil {
				return "", fmt.Errorf("arm %s, %s: %w", arm, c, err)
			}
			row = append(row, fmt.Sprintf("%.3f [%.3f, %.3f]", iv.Mean, iv.Lo, iv.Hi))
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String(), nil
}
