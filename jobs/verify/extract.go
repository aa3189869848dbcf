package verify

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// gsm8kTail is how many characters (code points) from the end of a
// completion the gsm8k verifier searches for "#### N".
const gsm8kTail = 300

var (
	// "#### N": N may carry a sign, '$', thousands commas and a decimal part.
	gsm8kRE = regexp.MustCompile(`####\s*([-−+]?\s*\$?\s*[0-9][0-9,]*(?:\.[0-9]+)?)`)
	// A number anywhere: the flexible GSM8K extraction and math's last resort.
	numberRE = regexp.MustCompile(`[-−]?\$?[0-9][0-9,]*(?:\.[0-9]+)?`)
	// math's last resort also takes a simple fraction a/b.
	mathNumberRE = regexp.MustCompile(`[-−]?[0-9][0-9,]*(?:\.[0-9]+)?(?:\s*/\s*[0-9]+(?:\.[0-9]+)?)?`)
	// "Answer: ...", "answer is ...", "#### ..." up to the end of the line.
	answerLineRE = regexp.MustCompile(`(?i)(?:answer\s*(?:is|:)|####)[ \t]*:?[ \t]*([^\n]*)`)
)

// ExtractAnswer returns the answer a verifier would read from text, or ""
// when there is none. Styles:
//
//   - "gsm8k": N from the last "#### N" in the final 300 characters, with
//     commas, '$' and spaces removed and a unicode minus made ASCII;
//   - "gsm8k_flexible": the last number in text, cleaned the same way;
//   - "boxed": the content of the last \boxed{...} or \fbox{...};
//   - "math": "boxed", else the rest of the line after the last "Answer:",
//     "answer is" or "####" (trailing '.' and surrounding '$' removed), else
//     the last number or a/b fraction;
//   - "exact": text trimmed, whitespace runs collapsed.
//
// An unknown style returns "".
func ExtractAnswer(text, style string) string {
	switch style {
	case "exact":
		return normalizeSpace(text)
	case "gsm8k":
		tail := text
		if n := utf8.RuneCountInString(text); n > gsm8kTail {
			skip := n - gsm8kTail
			for i := range text {
				if skip == 0 {
					tail = text[i:]
					break
				}
				skip--
			}
		}
		ms := gsm8kRE.FindAllStringSubmatch(tail, -1)
		if len(ms) == 0 {
			return ""
		}
		return cleanNumber(ms[len(ms)-1][1])
	case "gsm8k_flexible":
		ms := numberRE.FindAllString(text, -1)
		if len(ms) == 0 {
			return ""
		}
		return cleanNumber(ms[len(ms)-1])
	case "boxed":
		s, _ := lastBoxed(text)
		return strings.TrimSpace(s)
	case "math":
		if s, ok := lastBoxed(text); ok {
			return strings.TrimSpace(s)
		}
		if ms := answerLineRE.FindAllStringSubmatch(text, -1); len(ms) > 0 {
			s := strings.TrimSpace(ms[len(ms)-1][1])
			s = strings.TrimSpace(strings.TrimSuffix(s, "."))
			s = strings.TrimSpace(strings.Trim(s, "$"))
			if s != "" {
				return s
			}
		}
		ms := mathNumberRE.FindAllString(text, -1)
		if len(ms) == 0 {
			return ""
		}
		return strings.ReplaceAll(ms[len(ms)-1], "−", "-")
	}
	return ""
}

// cleanNumber removes '$', thousands commas and spaces from a number and
// turns a unicode minus (U+2212) into '-'; a leading '+' is dropped.
func cleanNumber(s string) string {
	s = strings.NewReplacer(",", "", "$", "", " ", "", "\t", "", "−", "-").Replace(s)
	return strings.TrimPrefix(s, "+")
}

// lastBoxed returns the argument of the last well-formed \boxed or \fbox in
// text: "\boxed{...}" with nested braces matched (escaped \{ \} do not
// count), or "\boxed x" up to the next space or '$'. ok is false when there
// is none; an unclosed final \boxed{ (a truncated completion) is skipped in
// favour of an earlier complete one.
func lastBoxed(text string) (string, bool) {
	end := len(text)
	for end > 0 {
		i := max(strings.LastIndex(text[:end], `\boxed`), strings.LastIndex(text[:end], `\fbox`))
		if i < 0 {
			return "", false
		}
		end = i
		j := i + len(`\boxed`)
		if strings.HasPrefix(text[i:], `\fbox`) {
			j = i + len(`\fbox`)
		}
		cmdEnd := j
		for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
			j++
		}
		if j < len(text) && text[j] == '{' {
			if k := matchBrace(text, j); k > 0 {
				return text[j+1 : k], true
			}
			continue
		}
		if j > cmdEnd && j < len(text) { // "\boxed 5": needs the space
			k := j
			for k < len(text) && text[k] != ' ' && text[k] != '$' && text[k] != '\n' {
				k++
			}
			if k > j {
				return strings.TrimSuffix(text[j:k], "."), true
			}
		}
	}
	return "", false
}

// matchBrace returns the index of the '}' closing the '{' at s[open], or -1.
// Backslash-escaped braces are skipped.
func matchBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// parseDecimal parses a plain decimal number such as "-12", "3.5", ".5",
// "1e-3" (after cleanNumber); ok is false for anything else.
func parseDecimal(s string) (float64, bool) {
	s = strings.TrimSuffix(cleanNumber(strings.TrimSpace(s)), ".")
	if s == "" || strings.ContainsAny(s, "xXpP_") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "nan") {
		return 0, false
	}
	if c := s[len(s)-1]; c < '0' || c > '9' {
		if c != '.' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// integersEqual compares a and b exactly when both are plain integers
// ("-12", "1000000"); decided is false otherwise. Integers are not given
// the relative tolerance, which would call 1000001 equal to 1000000.
func integersEqual(a, b string) (equal, decided bool) {
	x, errA := strconv.ParseInt(strings.TrimPrefix(a, "+"), 10, 64)
	y, errB := strconv.ParseInt(strings.TrimPrefix(b, "+"), 10, 64)
	if errA != nil || errB != nil {
		return false, false
	}
	return x == y, true
}

// closeEnough is numeric equality with relative tolerance 1e-6:
// |a-b| <= 1e-6 * max(|a|, |b|).
func closeEnough(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(math.Abs(a), math.Abs(b))
}
