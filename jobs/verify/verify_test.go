package verify

import (
	"strings"
	"testing"
)

func TestVerifiers(t *testing.T) {
	long := strings.Repeat("and then some more words. ", 16) // > 300 characters
	tests := []struct {
		name       string
		verifier   string
		pattern    string
		completion string
		answer     string
		correct    bool
		extracted  string // checked when not "-"
	}{
		// math: extraction
		{"math boxed negative", "math", "", `So $x = \boxed{-5}$.`, "-5", true, "-5"},
		{"math unicode minus", "math", "", `\boxed{−5}`, "-5", true, "−5"},
		{"math last boxed wins", "math", "", `first \boxed{5}, corrected: \boxed{6}`, "5", false, "6"},
		{"math truncated final boxed", "math", "", `\boxed{5} and then \boxed{6`, "5", true, "5"},
		{"math nested braces", "math", "", `\boxed{\frac{\sqrt{3}}{2}}`, `\frac{\sqrt3}{2}`, true, `\frac{\sqrt{3}}{2}`},
		{"math escaped braces in set", "math", "", `\boxed{\{1, 2, 3\}}`, `\{3,2,1\}`, true, `\{1, 2, 3\}`},
		{"math fbox", "math", "", `\fbox{7}`, "7", true, "7"},
		{"math boxed with space", "math", "", `is \boxed 7$.`, "7", true, "7"},
		{"math Answer line", "math", "", "Work...\nAnswer: 42", "42", true, "42"},
		{"math answer is with dollars", "math", "", `The answer is $\frac{3}{4}$.`, "0.75", true, `\frac{3}{4}`},
		{"math hash answer", "math", "", "so\n#### 1,000", "1000", true, "1,000"},
		{"math last number fallback", "math", "", "so we get 12 apples in all", "12", true, "12"},
		{"math last fraction fallback", "math", "", "the ratio is 3/4 overall", `\frac34`, true, "3/4"},
		{"math no answer", "math", "", "I do not know.", "5", false, ""},
		{"math empty completion", "math", "", "", "5", false, ""},
		{"math empty boxed", "math", "", `\boxed{}`, "5", false, ""},
		// math: normalisation and equality
		{"math thousands commas", "math", "", `\boxed{1,000}`, "1000", true, "-"},
		{"math spaced thousands", "math", "", `\boxed{11,\! 111,\! 111,\! 100}`, "11111111100", true, "-"},
		{"math dollar sign", "math", "", `\boxed{\$1,000}`, "1000", true, "-"},
		{"math dollars and cents", "math", "", `\boxed{\$5.00}`, "5", true, "-"},
		{"math dfrac vs decimal", "math", "", `\boxed{\dfrac{1}{2}}`, "0.5", true, "-"},
		{"math short frac", "math", "", `\boxed{\frac12}`, `\frac{1}{2}`, true, "-"},
		{"math slash vs tfrac", "math", "", `\boxed{1/2}`, `\tfrac{1}{2}`, true, "-"},
		{"math decimal vs third", "math", "", `\boxed{0.3333333}`, `\frac{1}{3}`, true, "-"},
		{"math rounded third is wrong", "math", "", `\boxed{0.333}`, `\frac{1}{3}`, false, "-"},
		{"math leading dot", "math", "", `\boxed{.5}`, "0.5", true, "-"},
		{"math 3.0 vs 3", "math", "", `\boxed{3.0}`, "3", true, "-"},
		{"math integers exact", "math", "", `\boxed{1000001}`, "1000000", false, "-"},
		{"math polar tuple", "math", "", `\boxed{\left( 3, \frac{\pi}{2} \right)}`, `\left( 3, \frac{\pi}{2} \right)`, true, "-"},
		{"math tuple spacing and frac", "math", "", `\boxed{(3,\pi/2)}`, `\left( 3, \frac{\pi}{2} \right)`, true, "-"},
		{"math tuple order matters", "math", "", `\boxed{\left( \frac{\pi}{2}, 3 \right)}`, `\left( 3, \frac{\pi}{2} \right)`, false, "-"},
		{"math interval", "math", "", `\boxed{[2, 5)}`, "[2,5)", true, "-"},
		{"math interval brackets matter", "math", "", `\boxed{(2, 5)}`, "[2,5)", false, "-"},
		{"math left right interval", "math", "", `\boxed{\left[ 1, 2 \right)}`, "[1,2)", true, "-"},
		{"math interval union", "math", "", `\boxed{(-\infty, 3] \cup [5, \infty)}`, `(-\infty,3]\cup[5,\infty)`, true, "-"},
		{"math x in interval", "math", "", `\boxed{x \in [1, 2]}`, "[1,2]", true, "-"},
		{"math unordered list", "math", "", `\boxed{-2, 1}`, "1, -2", true, "-"},
		{"math list length differs", "math", "", `\boxed{-2, 1}`, "1", false, "-"},
		{"math degrees", "math", "", `\boxed{90^\circ}`, "90", true, "-"},
		{"math degrees braces and symbol", "math", "", `\boxed{90^{\circ}}`, "90°", true, "-"},
		{"math percent", "math", "", `\boxed{25\%}`, "25", true, "-"},
		{"math percent is not a fraction", "math", "", `\boxed{50\%}`, "0.5", false, "-"},
		{"math text units", "math", "", `\boxed{5.4 \text{ cents}}`, "5.4", true, "-"},
		{"math mbox units squared", "math", "", `\boxed{12\mbox{ cm}^2}`, "12", true, "-"},
		{"math plain units", "math", "", `\boxed{10 inches}`, "10", true, "-"},
		{"math algebra is not a unit", "math", "", `\boxed{5r^5}`, "5", false, "-"},
		{"math variable m is not metres", "math", "", `\boxed{3m}`, "3", false, "-"},
		{"math x = 5", "math", "", `\boxed{x = 5}`, "5", true, "-"},
		{"math gold x=5", "math", "", `\boxed{5}`, "x=5", true, "-"},
		{"math theta equation", "math", "", `\boxed{\theta = \frac{\pi}{4}}`, `\frac{\pi}{4}`, true, "-"},
		{"math surrounding dollars", "math", "", `\boxed{$\frac{2}{3}$}`, `\frac{2}{3}`, true, "-"},
		{"math sqrt forms", "math", "", `\boxed{2\sqrt{2}}`, `\sqrt{8}`, true, "-"},
		{"math sqrt differs", "math", "", `\boxed{\sqrt{50}}`, `\sqrt{51}`, false, "-"},
		{"math pi is not 3.14", "math", "", `\boxed{\pi}`, "3.14", false, "-"},
		{"math mixed number", "math", "", `\boxed{2\frac{1}{2}}`, "2.5", true, "-"},
		{"math multiple choice", "math", "", `\boxed{\text{(C)}}`, "C", true, "-"},
		{"math text answer", "math", "", `\boxed{\text{Monday}}`, "Monday", true, "-"},
		{"math complex number spacing", "math", "", `\boxed{-2+7i}`, "-2 + 7i", true, "-"},
		{"math exponent braces", "math", "", `\boxed{x^{2}+1}`, "x^2+1", true, "-"},
		{"math pmatrix", "math", "", `\boxed{\begin{pmatrix} 1/2 \\ -3 \end{pmatrix}}`, `\begin{pmatrix}0.5\\-3\end{pmatrix}`, true, "-"},
		{"math division by zero", "math", "", `\boxed{\frac{1}{0}}`, "1", false, "-"},
		{"math spacing macros", "math", "", `\boxed{3\,\mathrm{m}\!}`, "3", true, "-"},
		{"math empty gold", "math", "", `\boxed{5}`, "", false, "-"},
		// gsm8k
		{"gsm8k plain", "gsm8k", "", "2+2=4\n#### 4", "4", true, "4"},
		{"gsm8k commas", "gsm8k", "", "#### 1,234", "1234", true, "1234"},
		{"gsm8k dollar", "gsm8k", "", "#### $18", "18", true, "18"},
		{"gsm8k negative", "gsm8k", "", "#### -3", "-3", true, "-3"},
		{"gsm8k unicode minus", "gsm8k", "", "#### −3", "-3", true, "-3"},
		{"gsm8k decimal zeros", "gsm8k", "", "#### 18.00", "18", true, "18.00"},
		{"gsm8k last of two", "gsm8k", "", "#### 5\nno wait\n#### 7", "7", true, "7"},
		{"gsm8k wrong", "gsm8k", "", "#### 17", "18", false, "17"},
		{"gsm8k outside final 300 characters", "gsm8k", "", "#### 18\n" + long, "18", false, ""},
		{"gsm8k needs the marker", "gsm8k", "", "The answer is 18.", "18", false, ""},
		{"gsm8k gold is a whole solution", "gsm8k", "", "#### 18", "9*2=18\n#### 18", true, "18"},
		{"gsm8k gold with comma", "gsm8k", "", "#### 1000", "1,000", true, "1000"},
		{"gsm8k empty", "gsm8k", "", "", "18", false, ""},
		{"flexible last number", "gsm8k_flexible", "", "The answer is 18.", "18", true, "18"},
		{"flexible money", "gsm8k_flexible", "", "It costs $1,250.50 in total.", "1250.5", true, "1250.50"},
		{"flexible negative", "gsm8k_flexible", "", "The change is −7 degrees", "-7", true, "-7"},
		{"flexible outside 300 is fine", "gsm8k_flexible", "", "#### 18\n" + long, "18", true, "18"},
		{"flexible no number", "gsm8k_flexible", "", "no idea", "18", false, ""},
		// exact
		{"exact trims", "exact", "", "  Paris \n", "Paris", true, "Paris"},
		{"exact collapses whitespace", "exact", "", "New \t  York", "New York", true, "New York"},
		{"exact is case sensitive", "exact", "", "paris", "Paris", false, "paris"},
		{"exact empty", "exact", "", "   ", "", false, ""},
		// regex
		{"regex last match group", "regex", `ANSWER: (\w+)`, "ANSWER: foo\nthen ANSWER: bar", "bar", true, "bar"},
		{"regex whole match without group", "regex", `\d+`, "a 1 b 22", "22", true, "22"},
		{"regex group normalised", "regex", `<a>(.*?)</a>`, "<a>  two   words </a>", "two words", true, "two words"},
		{"regex no match", "regex", `ANSWER: (\w+)`, "nothing", "bar", false, ""},
		{"regex optional group missing", "regex", `x(y)?`, "x", "x", true, "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Score(tc.verifier, tc.completion, tc.answer, Options{Pattern: tc.pattern})
			if err != nil {
				t.Fatal(err)
			}
			if r.Correct != tc.correct || r.Reward != map[bool]float64{true: 1, false: 0}[tc.correct] {
				t.Errorf("Score(%s, %q, %q) = %+v, want correct=%v", tc.verifier, tc.completion, tc.answer, r, tc.correct)
			}
			if tc.extracted != "-" && r.Extracted != tc.extracted {
				t.Errorf("Score(%s, %q) extracted %q, want %q", tc.verifier, tc.completion, r.Extracted, tc.extracted)
			}
		})
	}
}

func TestScoreErrors(t *testing.T) {
	tests := []struct {
		name, verifier, pattern, want string
	}{
		{"unknown verifier", "fuzzy", "", `unknown verifier "fuzzy"`},
		{"regex without pattern", "regex", "", "needs a pattern"},
		{"bad pattern", "regex", "(", "regex pattern"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Score(tc.verifier, "x", "x", Options{Pattern: tc.pattern})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExtractAnswer(t *testing.T) {
	tests := []struct {
		text, style, want string
	}{
		{`a \boxed{x^{2}} b`, "boxed", "x^{2}"},
		{`no box`, "boxed", ""},
		{"#### 1,000", "gsm8k", "1000"},
		{"pay $3 then $4.", "gsm8k_flexible", "4"},
		{`Answer: $\frac{1}{2}$.`, "math", `\frac{1}{2}`},
		{" a  b ", "exact", "a b"},
		{"x", "nonsense", ""},
	}
	for _, tc := range tests {
		t.Run(tc.style+"/"+tc.text, func(t *testing.T) {
			if got := ExtractAnswer(tc.text, tc.style); got != tc.want {
				t.Errorf("ExtractAnswer(%q, %q) = %q, want %q", tc.text, tc.style, got, tc.want)
			}
		})
	}
}

func TestMathEqualSymmetric(t *testing.T) {
	pairs := [][2]string{
		{`\frac{1}{2}`, "0.5"}, {"1,000", "1000"}, {`(1,2)`, `\left(1, 2\right)`}, {"x=5", "5"}, {`\{1,2\}`, `\{2,1\}`},
	}
	for _, p := range pairs {
		if !MathEqual(p[0], p[1]) || !MathEqual(p[1], p[0]) {
			t.Errorf("MathEqual(%q, %q) not symmetric-true", p[0], p[1])
		}
	}
}
