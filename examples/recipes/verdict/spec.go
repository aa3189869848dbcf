package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rljob/rljob/examples/recipes/stats"
)

// finding is one row of the findings spec (examples/recipes/findings.csv):
// the paper's claim that metric of arm A minus that of arm B is > 0 (Dir
// +1) or < 0 (Dir −1), stated before the run.
type finding struct {
	ID, Paper, Arxiv, Claim, Metric, A, B string
	Dir                                   int
}

var specHeader = []string{"id", "paper", "arxiv", "claim", "metric", "a", "b", "direction"}

// readSpecFile reads the findings spec (errors name the file and line).
func readSpecFile(path string) ([]finding, error) { return stats.ReadFile(path, readSpec) }

// readSpec parses a CSV with the header specHeader; direction is + or −
// (ASCII '-'); ids are unique and A ≠ B.
func readSpec(r io.Reader) ([]finding, error) {
	var out []finding
	seen := map[string]bool{}
	err := stats.ReadCSV(r, specHeader, func(rec []string) error {
		f, err := parseFinding(rec)
		if err != nil {
			return err
		}
		if seen[f.ID] {
			return fmt.Errorf("finding %s given twice", f.ID)
		}
		seen[f.ID] = true
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no findings after the header")
	}
	return out, nil
}

func parseFinding(rec []string) (finding, error) {
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
		if rec[i] == "" {
			return finding{}, fmt.Errorf("column %s is empty", specHeader[i])
		}
	}
	f := finding{ID: rec[0], Paper: rec[1], Arxiv: rec[2], Claim: rec[3], Metric: rec[4], A: rec[5], B: rec[6]}
	switch rec[7] {
	case "+":
		f.Dir = 1
	case "-":
		f.Dir = -1
	default:
		return finding{}, fmt.Errorf("direction %q: want + (A − B > 0) or - (A − B < 0)", rec[7])
	}
	if f.A == f.B {
		return finding{}, fmt.Errorf("arm A and arm B are both %s", f.A)
	}
	return f, nil
}
