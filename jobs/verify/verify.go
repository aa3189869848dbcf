// Package verify scores model completions against reference answers. Every
// verifier is a pure function of (completion, answer[, options]) returning
// a Result: Reward 1.0 and Correct true when the completion's answer
// matches, Reward 0.0 otherwise, and the answer text it extracted.
//
// Verifiers (names as used by the reward stage and Score):
//
//   - exact: the completion, trimmed and with every run of whitespace
//     collapsed to one space, equals the answer normalised the same way.
//   - gsm8k: the last "#### N" within the final 300 characters of the
//     completion (GSM8K's reference format); N with commas, '$' and spaces
//     removed must equal the answer as a number (integers exactly, other
//     numbers within relative 1e-6), or as text when either side is not a
//     number.
//   - gsm8k_flexible: as gsm8k, but N is the last number anywhere in the
//     completion.
//   - math: the last \boxed{...} or \fbox{...} (braces matched), else the
//     text after the last "Answer:" / "answer is" / "####" on its line,
//     else the last number; compared with MathEqual.
//   - regex: Options.Pattern (Go RE2 syntax) is matched against the
//     completion; the last match's first capture group (the whole match when
//     the pattern has no groups, or the group did not take part) is the
//     extracted answer, and it must equal the answer after the exact
//     verifier's whitespace normalisation. A pattern that does not compile
//     is an error; no match is a 0 reward.
//
// An empty answer never scores: a verifier that extracts nothing, or
// extracts an empty string, returns Correct false.
package verify

import (
	"fmt"
	"regexp"
	"strings"
)

// Result is a verifier's verdict on one completion.
type Result struct {
	Reward    float64 // 1.0 when Correct, else 0.0
	Correct   bool
	Extracted string // the answer found in the completion ("" if none)
}

// Options holds verifier arguments.
type Options struct {
	Pattern string // regex: RE2 pattern whose first group (or whole match) is the answer
}

// Verifier scores one completion against one reference answer.
type Verifier func(completion, answer string) Result

// Names lists the verifiers Score and Compile accept.
func Names() []string { return []string{"exact", "gsm8k", "gsm8k_flexible", "math", "regex"} }

// Compile returns the named verifier with its options bound, so a caller
// scoring many rows compiles a regex once.
func Compile(verifier string, opt Options) (Verifier, error) {
	switch verifier {
	case "exact":
		return Exact, nil
	case "gsm8k":
		return GSM8K, nil
	case "gsm8k_flexible":
		return GSM8KFlexible, nil
	case "math":
		return Math, nil
	case "regex":
		if opt.Pattern == "" {
			return nil, fmt.Errorf("verify: regex verifier needs a pattern")
		}
		re, err := regexp.Compile(opt.Pattern)
		if err != nil {
			return nil, fmt.Errorf("verify: regex pattern %q: %w", opt.Pattern, err)
		}
		return func(completion, answer string) Result { return Regex(re, completion, answer) }, nil
	}
	return nil, fmt.Errorf("verify: unknown verifier %q (want one of %s)", verifier, strings.Join(Names(), ", "))
}

// Score runs the named verifier on one completion.
func Score(verifier string, completion, answer string, opt Options) (Result, error) {
	v, err := Compile(verifier, opt)
	if err != nil {
		return Result{}, err
	}
	return v(completion, answer), nil
}

func result(extracted string, correct bool) Result {
	if extracted == "" {
		correct = false
	}
	r := Result{Correct: correct, Extracted: extracted}
	if correct {
		r.Reward = 1
	}
	return r
}

// normalizeSpace trims s and collapses every run of whitespace to one space.
func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// Exact is the exact verifier.
func Exact(completion, answer string) Result {
	got := normalizeSpace(completion)
	return result(got, got == normalizeSpace(answer))
}

// GSM8K is the gsm8k verifier (strict "#### N" format).
func GSM8K(completion, answer string) Result {
	got := ExtractAnswer(completion, "gsm8k")
	return result(got, numberOrTextEqual(got, goldGSM8K(answer)))
}

// GSM8KFlexible is the gsm8k_flexible verifier (last number).
func GSM8KFlexible(completion, answer string) Result {
	got := ExtractAnswer(completion, "gsm8k_flexible")
	return result(got, numberOrTextEqual(got, goldGSM8K(answer)))
}

// Math is the math verifier.
func Math(completion, answer string) Result {
	got := ExtractAnswer(completion, "math")
	return result(got, MathEqual(got, answer))
}

// Regex is the regex verifier with a compiled pattern.
func Regex(re *regexp.Regexp, completion, answer string) Result {
	ms := re.FindAllStringSubmatchIndex(completion, -1)
	if len(ms) == 0 {
		return result("", false)
	}
	m := ms[len(ms)-1]
	got := completion[m[0]:m[1]]
	if len(m) >= 4 && m[2] >= 0 {
		got = completion[m[2]:m[3]]
	}
	got = normalizeSpace(got)
	return result(got, got == normalizeSpace(answer))
}

// goldGSM8K accepts either the bare final answer or a whole GSM8K solution
// ending in "#### N" and returns the answer cleaned like an extraction.
func goldGSM8K(answer string) string {
	if strings.Contains(answer, "####") {
		if g := ExtractAnswer(answer, "gsm8k"); g != "" {
			return g
		}
	}
	return cleanNumber(strings.TrimSpace(answer))
}

// numberOrTextEqual compares two extracted GSM8K answers: as numbers when
// both parse (relative tolerance 1e-6), else as whitespace-normalised text.
func numberOrTextEqual(got, want string) bool {
	if got == "" || want == "" {
		return false
	}
	if eq, ok := integersEqual(got, want); ok {
		return eq
	}
	a, okA := parseDecimal(got)
	b, okB := parseDecimal(want)
	if okA && okB {
		return closeEnough(a, b)
	}
	return normalizeSpace(got) == normalizeSpace(want)
}
