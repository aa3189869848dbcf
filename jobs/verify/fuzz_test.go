package verify

import "testing"

// FuzzVerifiers checks that no verifier panics on any input, that every
// Result is consistent (Reward is 1 exactly when Correct; nothing extracted
// means not correct) and that MathEqual is reflexive on answers that
// normalise to something. Run with
//
//	go test -run '^$' -fuzz FuzzVerifiers -fuzztime 30s ./jobs/verify
func FuzzVerifiers(f *testing.F) {
	for _, s := range []string{
		`\boxed{\left( 3, \frac{\pi}{2} \right)}`, `\boxed{\{1,2\}}`, "#### 1,000", `\frac{1}{0}`, `\sqrt[3]{8}`,
		`2^{1000000}`, `\boxed{`, `\boxed{\}`, `(1,(2,3))`, `\begin{pmatrix}1\\2\end{pmatrix}`, "x = 5", "−3",
	} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, completion, answer string) {
		for _, v := range []string{"exact", "gsm8k", "gsm8k_flexible", "math"} {
			r, err := Score(v, completion, answer, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Correct != (r.Reward == 1) || !r.Correct && r.Reward != 0 || r.Correct && r.Extracted == "" {
				t.Fatalf("%s(%q, %q) = %+v: inconsistent", v, completion, answer, r)
			}
		}
		if normalizeMath(answer) != "" && !MathEqual(answer, answer) {
			t.Fatalf("MathEqual(%q, itself) = false", answer)
		}
		for _, style := range []string{"gsm8k", "gsm8k_flexible", "math", "boxed", "exact"} {
			_ = ExtractAnswer(completion, style)
		}
	})
}
