package verify

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedData returns ../shared/data relative to the repository root (the
// directory holding go.mod), or skips the test when it is absent.
func sharedData(t *testing.T, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("../shared/data absent: no go.mod above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("../shared/data absent: %v", err)
	}
	return p
}

// readJSONL decodes every line of a JSON-lines file into maps of strings.
func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("%s:%d: %v", path, len(rows)+1, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestGSM8KReferenceSolutions scores every GSM8K test reference solution
// against its own final answer (the number after "####") with both GSM8K
// verifiers and with math.
func TestGSM8KReferenceSolutions(t *testing.T) {
	rows := readJSONL(t, sharedData(t, "gsm8k/test.jsonl"))
	if len(rows) != 1319 {
		t.Errorf("gsm8k test has %d rows, want 1319", len(rows))
	}
	bad := map[string]int{}
	for i, row := range rows {
		sol, _ := row["answer"].(string)
		k := strings.LastIndex(sol, "####")
		if k < 0 {
			t.Fatalf("row %d: no #### in reference solution", i)
		}
		gold := strings.TrimSpace(sol[k+4:])
		for _, v := range []string{"gsm8k", "gsm8k_flexible", "math"} {
			r, err := Score(v, sol, gold, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Correct || r.Reward != 1 {
				bad[v]++
				if bad[v] <= 5 {
					t.Errorf("%s: row %d: gold %q extracted %q: not correct", v, i, gold, r.Extracted)
				}
			}
		}
	}
	t.Logf("gsm8k: %d reference solutions; incorrect per verifier: %v", len(rows), bad)
}

// TestMATH500Answers checks every MATH-500 answer: "\boxed{answer}" must
// match answer with the math verifier, and the solution's own last boxed
// answer should match too (mismatches are listed with the reason; the
// count is checked against the known number so that regressions fail).
func TestMATH500Answers(t *testing.T) {
	rows := readJSONL(t, sharedData(t, "math500/test.jsonl"))
	if len(rows) != 500 {
		t.Errorf("math500 test has %d rows, want 500", len(rows))
	}
	solutionMatches := 0
	for i, row := range rows {
		answer, _ := row["answer"].(string)
		id, _ := row["unique_id"].(string)
		r := Math("The answer is $\\boxed{"+answer+"}$.", answer)
		if !r.Correct || r.Extracted != strings.TrimSpace(answer) {
			t.Errorf("row %d (%s): \\boxed{%s} extracted %q correct=%v", i, id, answer, r.Extracted, r.Correct)
		}
		sol, _ := row["solution"].(string)
		r = Math(sol, answer)
		if r.Correct {
			solutionMatches++
		} else {
			t.Logf("row %d (%s): solution's last boxed %q does not match answer %q", i, id, r.Extracted, answer)
		}
	}
	t.Logf("math500: %d/%d solutions' last boxed answers match the answer field", solutionMatches, len(rows))
	if solutionMatches < len(rows)-knownSolutionMismatches {
		t.Errorf("only %d/%d solutions match (expected at least %d)", solutionMatches, len(rows), len(rows)-knownSolutionMismatches)
	}
}

// knownSolutionMismatches is how many MATH-500 solutions' last boxed answer
// differs from the answer field after normalisation (see the test log).
const knownSolutionMismatches = 0

// TestDataNegatives guards against a verifier that says yes too easily:
// each GSM8K solution must fail against its answer plus one, and each
// MATH-500 boxed answer must fail against other rows' answers unless the
// two are the same value (listed in the log).
func TestDataNegatives(t *testing.T) {
	for _, row := range readJSONL(t, sharedData(t, "gsm8k/test.jsonl")) {
		sol, _ := row["answer"].(string)
		gold := cleanNumber(strings.TrimSpace(sol[strings.LastIndex(sol, "####")+4:]))
		wrong := gold + "1"
		for _, v := range []string{"gsm8k", "gsm8k_flexible", "math"} {
			if r, _ := Score(v, sol, wrong, Options{}); r.Correct {
				t.Errorf("%s: solution ending %q scored correct against %q", v, gold, wrong)
			}
		}
	}
	rows := readJSONL(t, sharedData(t, "math500/test.jsonl"))
	cross := 0
	for i, row := range rows {
		for _, d := range []int{1, 7, 101} {
			other := rows[(i+d)%len(rows)]
			a, _ := row["answer"].(string)
			b, _ := other["answer"].(string)
			if Math(`\boxed{`+a+`}`, b).Correct {
				cross++
				t.Logf("math500: answer %q matches other row's %q", a, b)
				if normalizeMath(a) != normalizeMath(b) {
					if va, ok := evalNumber(normalizeMath(a)); !ok || !closeEnough(va, must(evalNumber(normalizeMath(b)))) {
						t.Errorf("math500: %q matches %q but they are not the same value", a, b)
					}
				}
			}
		}
	}
	t.Logf("math500: %d cross-row matches, all between equal values", cross)
}

func must(v float64, _ bool) float64 { return v }
