package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
func readSpecFile(path string) ([]finding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fs, err := readSpec(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fs, nil
}

// readSpec parses a CSV with the header specHeader; direction is + or −
// (ASCII '-'); ids are unique and A ≠ B.
func readSpec(r io.Reader) ([]finding, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // the header sets it; a wrong one gets the error below
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if strings.Join(head, ",") != strings.Join(specHeader, ",") {
		return nil, fmt.Errorf("line 1: header %q, want %s", strings.Join(head, ","), strings.Join(specHeader, ","))
	}
	var out []finding
	seen := map[string]bool{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		f, err := parseFinding(rec)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if seen[f.ID] {
			return nil, fmt.Errorf("line %d: finding %s given twice", line, f.ID)
		}
		seen[f.ID] = true
		out = append(out, f)
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
