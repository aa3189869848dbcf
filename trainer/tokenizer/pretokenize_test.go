package tokenizer

import (
	"reflect"
	"strings"
	"testing"
)

// TestPreTokenize checks the hand-written scanners on tricky strings. The
// expected pieces were produced by JavaScript's regex engine (node 20,
// String.prototype.match with the "gu" flags; (?i:...) spelled out as
// character classes since node 20 lacks inline modifiers), the engine of the
// npm packages behind the golden ids. A differential run of 20,000 random
// strings over an alphabet of spaces, NBSP, U+3000, U+2028, CR/LF, letters,
// digits (incl. ¾ and ٣), apostrophes, punctuation, emoji and a combining
// mark found no mismatch for any of the three patterns.
func TestPreTokenize(t *testing.T) {
	cases := []struct {
		name, text        string
		gpt2, qwen, llama []string
	}{
		{"nbsp", "costs\u00a0$5 and\u00a0\u00a0more",
			[]string{"costs", "\u00a0", "$", "5", " and", "\u00a0", "\u00a0", "more"},
			[]string{"costs", "\u00a0", "$", "5", " and", "\u00a0", "\u00a0more"},
			[]string{"costs", "\u00a0", "$", "5", " and", "\u00a0", "\u00a0more"}},
		{"space runs", "a   b \t c  ",
			[]string{"a", "  ", " b", " \t", " c", "  "},
			[]string{"a", "  ", " b", " \t", " c", "  "},
			[]string{"a", "  ", " b", " \t", " c", "  "}},
		{"newlines", "x\n\n  y\r\n\tz \n",
			[]string{"x", "\n\n ", " y", "\r\n", "\t", "z", " \n"},
			[]string{"x", "\n\n", " ", " y", "\r\n", "\tz", " \n"},
			[]string{"x", "\n\n", " ", " y", "\r\n", "\tz", " \n"}},
		{"contractions", "I'm we'RE they'll 'sfoo O'Neil",
			[]string{"I", "'m", " we", "'", "RE", " they", "'ll", " '", "sfoo", " O", "'", "Neil"},
			[]string{"I", "'m", " we", "'RE", " they", "'ll", " '", "sfoo", " O", "'Neil"},
			[]string{"I", "'m", " we", "'RE", " they", "'ll", " '", "sfoo", " O", "'Neil"}},
		{"digits", "12345 x9 \u00be\u0663",
			[]string{"12345", " x", "9", " \u00be\u0663"},
			[]string{"1", "2", "3", "4", "5", " x", "9", " ", "\u00be", "\u0663"},
			[]string{"123", "45", " x", "9", " ", "\u00be\u0663"}},
		{"punct", "f(x): a--b?! ...\n\n(\"q\")",
			[]string{"f", "(", "x", "):", " a", "--", "b", "?!", " ...", "\n", "\n", "(\"", "q", "\")"},
			[]string{"f", "(x", "):", " a", "--", "b", "?!", " ...\n\n", "(\"", "q", "\")"},
			[]string{"f", "(x", "):", " a", "--", "b", "?!", " ...\n\n", "(\"", "q", "\")"}},
		{"unicode", "\u65e5\u672c\u8a9e \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac 😀😀 e\u0301",
			[]string{"\u65e5\u672c\u8a9e", " \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", " 😀😀", " e", "\u0301"},
			[]string{"\u65e5\u672c\u8a9e", " \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", " 😀😀", " e", "\u0301"},
			[]string{"\u65e5\u672c\u8a9e", " \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", " 😀😀", " e", "\u0301"}},
		{"ideographic space", "a\u3000b\u2028c",
			[]string{"a", "\u3000", "b", "\u2028", "c"},
			[]string{"a", "\u3000b", "\u2028c"},
			[]string{"a", "\u3000b", "\u2028c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, x := range []struct {
				p    pattern
				want []string
			}{{patGPT2, tc.gpt2}, {patQwen2, tc.qwen}, {patLlama3, tc.llama}} {
				if got := x.p.split(nil, tc.text); !reflect.DeepEqual(got, x.want) {
					t.Errorf("pattern %d: %q\n got %q\nwant %q", x.p, tc.text, got, x.want)
				}
			}
		})
	}
}

// TestPreTokenizeEngineDifferences pins the choices where regex engines
// disagree (none occurs in the golden data): \s is Unicode White_Space as in
// Oniguruma (HF tokenizers), so U+0085 is whitespace and U+FEFF is not (JS
// has it the other way round); (?i:'s) also matches the long s ſ, by Unicode
// case folding.
func TestPreTokenizeEngineDifferences(t *testing.T) {
	cases := []struct {
		name string
		p    pattern
		text string
		want []string
	}{
		{"NEL is space", patGPT2, "a\u0085\u0085b", []string{"a", "\u0085", "\u0085", "b"}},
		{"BOM is other", patGPT2, "a \ufeffb", []string{"a", " \ufeff", "b"}},
		{"long s folds", patQwen2, "it'ſ", []string{"it", "'ſ"}},
		{"gpt2 is case-sensitive", patGPT2, "IT'S", []string{"IT", "'", "S"}},
		{"invalid utf8 is other", patGPT2, "a\xff\xfeb", []string{"a", "\xff\xfe", "b"}},
		{"empty", patQwen2, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.split(nil, tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// TestPreTokenizeLongRuns checks that pathological inputs stay linear and
// that pieces always cover the text.
func TestPreTokenizeLongRuns(t *testing.T) {
	for _, text := range []string{strings.Repeat(" ", 100000) + "x", strings.Repeat("ab", 50000), strings.Repeat("\r\n ", 30000)} {
		for _, p := range []pattern{patGPT2, patQwen2, patLlama3} {
			if got := strings.Join(p.split(nil, text), ""); got != text {
				t.Errorf("pattern %d: pieces do not cover the text", p)
			}
		}
	}
}
