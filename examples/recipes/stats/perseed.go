package stats

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// PerSeed is make compare's per-seed results (OUT/perseed.csv): long
// format, header arm,seed,metric,value, one row per arm, seed and metric.
type PerSeed struct {
	Arms []string                              // in first-seen order
	V    map[string]map[string]map[int]float64 // arm → metric → seed → value
}

// Value is one arm's metric at one seed, and whether it is there.
func (p *PerSeed) Value(arm, metric string, seed int) (float64, bool) {
	v, ok := p.V[arm][metric][seed]
	return v, ok
}

// Seeds are the seeds that have arm's metric, in increasing order.
func (p *PerSeed) Seeds(arm, metric string) []int {
	var s []int
	for seed := range p.V[arm][metric] {
		s = append(s, seed)
	}
	sort.Ints(s)
	return s
}

// Values are arm's metric over Seeds(arm, metric), in the same order.
func (p *PerSeed) Values(arm, metric string) []float64 {
	var v []float64
	for _, s := range p.Seeds(arm, metric) {
		v = append(v, p.V[arm][metric][s])
	}
	return v
}

// ReadPerSeedFile reads a perseed.csv file (errors name the file).
func ReadPerSeedFile(path string) (*PerSeed, error) { return ReadFile(path, ReadPerSeed) }

// ReadPerSeed parses the CSV described at PerSeed. A duplicate (arm, seed,
// metric), a bad seed or value, or a header other than arm,seed,metric,value
// is an error naming the line.
func ReadPerSeed(r io.Reader) (*PerSeed, error) {
	p := &PerSeed{V: map[string]map[string]map[int]float64{}}
	if err := ReadCSV(r, []string{"arm", "seed", "metric", "value"}, p.add); err != nil {
		return nil, err
	}
	if len(p.Arms) == 0 {
		return nil, errors.New("no rows after the header")
	}
	return p, nil
}

// add stores one row.
func (p *PerSeed) add(rec []string) error {
	arm, metric := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[2])
	if arm == "" || metric == "" {
		return errors.New("empty arm or metric")
	}
	seed, err := strconv.Atoi(strings.TrimSpace(rec[1]))
	if err != nil {
		return fmt.Errorf("seed %q is not an integer", rec[1])
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rec[3]), 64)
	if err != nil {
		return fmt.Errorf("value %q is not a number", rec[3])
	}
	if p.V[arm] == nil {
		p.V[arm] = map[string]map[int]float64{}
		p.Arms = append(p.Arms, arm)
	}
	if p.V[arm][metric] == nil {
		p.V[arm][metric] = map[int]float64{}
	}
	if _, dup := p.V[arm][metric][seed]; dup {
		return fmt.Errorf("arm %s, seed %d, metric %s given twice", arm, seed, metric)
	}
	p.V[arm][metric][seed] = v
	return nil
}

// LargeK is one large-k metric of an arm: pass@K from N samples per
// prompt, named pass@K@N in perseed.csv.
type LargeK struct {
	K         int
	N, Metric string
}

// LargeKs are arm's large-k metrics (pass@K@N), by K.
func (p *PerSeed) LargeKs(arm string) []LargeK {
	var out []LargeK
	for m := range p.V[arm] {
		rest, ok := strings.CutPrefix(m, "pass@")
		if !ok {
			continue
		}
		k, n, ok := strings.Cut(rest, "@")
		if !ok {
			continue
		}
		if kv, err := strconv.Atoi(k); err == nil {
			out = append(out, LargeK{K: kv, N: n, Metric: m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}
