package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer regexes of the byte-level BPE tokenizers we support, as
// they appear in tokenizer.json. Go's regexp has no look-ahead ((?!\S)) and
// its \s is ASCII-only, so each is implemented below as a hand-written
// scanner over runes that returns the same matches as the regex engines.
const (
	// PatternGPT2 is GPT-2's pattern (also implied by a ByteLevel
	// pre-tokenizer with use_regex true).
	PatternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// PatternQwen2 is the pattern of Qwen2, Qwen2.5 and Qwen3.
	PatternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// PatternLlama3 is Llama 3's pattern: Qwen2's with runs of up to 3 digits.
	PatternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// pattern identifies one of the supported pre-tokenizer regexes.
type pattern int

const (
	patGPT2 pattern = iota + 1
	patQwen2
	patLlama3
)

func (p pattern) String() string {
	switch p {
	case patGPT2:
		return PatternGPT2
	case patQwen2:
		return PatternQwen2
	case patLlama3:
		return PatternLlama3
	}
	return "?"
}

// patternOf recognises a tokenizer.json Split regex.
func patternOf(regex string) (pattern, bool) {
	switch regex {
	case PatternGPT2:
		return patGPT2, true
	case PatternQwen2:
		return patQwen2, true
	case PatternLlama3:
		return patLlama3, true
	}
	return 0, false
}

// Character classes of the patterns.
//
// \s is Unicode White_Space, which is what unicode.IsSpace tests and what
// Oniguruma (HF tokenizers) uses: \t \n \v \f \r, space, U+0085, U+00A0,
// U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. JavaScript's
// \s (the npm packages that produced the golden ids) differs only in
// including U+FEFF and excluding U+0085; Python's `regex` (OpenAI's GPT-2
// encoder) also includes U+001C–U+001F. Neither difference occurs in the
// golden data; NBSP (U+00A0), which GSM8K contains, is whitespace in all of
// them. Invalid UTF-8 decodes to U+FFFD (one byte), which is "other".
func isSpace(r rune) bool  { return unicode.IsSpace(r) }
func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

// runeAt returns the rune at byte offset i and its width; (−1, 0) at the end.
func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// skip returns the offset after the run of runes satisfying f starting at i,
// taking at most max runes (max < 0: no limit).
func skip(s string, i int, f func(rune) bool, max int) int {
	for n := 0; max < 0 || n < max; n++ {
		r, w := runeAt(s, i)
		if w == 0 || !f(r) {
			break
		}
		i += w
	}
	return i
}

// spaceMatch implements `\s+(?!\S)|\s+` at i, where s[i] is whitespace: the
// whole run when it reaches the end of the text or is a single rune, else
// the run less its last rune (which then starts the next piece, so that a
// word keeps its leading space).
func spaceMatch(s string, i int) int {
	end := skip(s, i, isSpace, -1)
	if end == len(s) {
		return end
	}
	_, lastW := utf8.DecodeLastRuneInString(s[:end])
	if end-lastW > i {
		return end - lastW
	}
	return end
}

// split appends the pre-tokens of text under pattern p to dst. The pieces
// are consecutive substrings covering text exactly.
func (p pattern) split(dst []string, text string) []string {
	for i := 0; i < len(text); {
		var j int
		if p == patGPT2 {
			j = matchGPT2(text, i)
		} else {
			maxDigits := 1
			if p == patLlama3 {
				maxDigits = 3
			}
			j = matchQwen2(text, i, maxDigits)
		}
		dst = append(dst, text[i:j])
		i = j
	}
	return dst
}

// contractionLen returns the length of a contraction `'s|'t|'re|'ve|'m|'ll|'d`
// at i (0 if none). foldCase implements (?i:...), where Unicode simple case
// folding also maps U+017F (ſ, long s) to s.
func contractionLen(s string, i int, foldCase bool) int {
	if s[i] != '\'' {
		return 0
	}
	lower := func(r rune) rune {
		if !foldCase {
			return r
		}
		if r == 'ſ' {
			return 's'
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	r1, w1 := runeAt(s, i+1)
	switch lower(r1) {
	case 's', 't', 'm', 'd':
		return 1 + w1
	case 'r', 'v':
		if r2, w2 := runeAt(s, i+1+w1); lower(r2) == 'e' {
			return 1 + w1 + w2
		}
	case 'l':
		if r2, w2 := runeAt(s, i+1+w1); lower(r2) == 'l' {
			return 1 + w1 + w2
		}
	}
	return 0
}

// matchGPT2 returns the end of the match of PatternGPT2 starting at i:
//
//	's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
func matchGPT2(s string, i int) int {
	if n := contractionLen(s, i, false); n > 0 {
		return i + n
	}
	c, w := runeAt(s, i)
	j := i // start of the class run, after an optional space
	if c == ' ' {
		j = i + 1
	}
	next, _ := runeAt(s, j)
	switch {
	case isLetter(next):
		return skip(s, j, isLetter, -1)
	case isNumber(next):
		return skip(s, j, isNumber, -1)
	case next >= 0 && isOther(next):
		return skip(s, j, isOther, -1)
	}
	// c is whitespace (a space followed by whitespace or the end, or other
	// whitespace).
	if !isSpace(c) {
		return i + w // unreachable: every rune is a letter, number, other or space
	}
	return spaceMatch(s, i)
}

// matchQwen2 returns the end of the match of PatternQwen2 (maxDigits 1) or
// PatternLlama3 (maxDigits 3) starting at i:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,maxDigits} |
//	 ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
func matchQwen2(s string, i int, maxDigits int) int {
	if n := contractionLen(s, i, true); n > 0 {
		return i + n
	}
	c, w := runeAt(s, i)
	isCRLF := func(r rune) bool { return r == '\r' || r == '\n' }
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(c) {
		return skip(s, i, isLetter, -1)
	}
	if !isCRLF(c) && !isNumber(c) {
		if next, _ := runeAt(s, i+w); isLetter(next) {
			return skip(s, i+w, isLetter, -1)
		}
	}
	// \p{N}{1,maxDigits}
	if isNumber(c) {
		return skip(s, i, isNumber, maxDigits)
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if c == ' ' {
		j = i + 1
	}
	if next, _ := runeAt(s, j); next >= 0 && isOther(next) {
		j = skip(s, j, isOther, -1)
		return skip(s, j, isCRLF, -1)
	}
	if !isSpace(c) {
		return i + w // unreachable: c is other, handled above
	}
	// \s*[\r\n]+ : the whitespace run up to and including its last CR/LF.
	end := skip(s, i, isSpace, -1)
	for k := end - 1; k >= i; k-- {
		if s[k] == '\r' || s[k] == '\n' {
			return k + 1
		}
	}
	return spaceMatch(s, i)
}
