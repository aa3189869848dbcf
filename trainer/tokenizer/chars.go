package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The special tokens of a character-level tokenizer, ids 0–3 in this order.
const (
	CharPad = "<|pad|>"
	CharBOS = "<|bos|>"
	CharEOS = "<|eos|>"
	CharUNK = "<|unk|>"
)

// charSplitRegex splits text into single code points (Oniguruma's `.` would
// skip newlines).
const charSplitRegex = `[\s\S]`

// Chars is a character-level tokenizer for synthetic tasks. Ids: 0 <|pad|>,
// 1 <|bos|>, 2 <|eos|>, 3 <|unk|>, then one id per symbol (Unicode code
// point) in the order given. Text spelling a special token encodes to it; a
// character outside the symbols encodes to <|unk|> (Encode has no error; use
// Unknown to check text first). Decode writes special tokens as their names.
//
// Saved as an HF tokenizer.json built only from components of HF tokenizers
// (Rust), in the form its serializer writes them, so that
// Tokenizer.from_file / PreTrainedTokenizerFast can load it: a WordLevel
// model (unk_token <|unk|>) over a Split pre-tokenizer isolating every code
// point (`[\s\S]`; Oniguruma's `.` would skip newlines), a Fuse decoder that
// joins the tokens without spaces, and the four special tokens in
// added_tokens. Load recognises that form and rebuilds the same Chars. (Not
// run against the Rust library here; HF's tokenizers.js loads it and gives
// the same ids for known characters, though it ignores the unk_token.)
type Chars struct {
	symbols []rune
	ids     map[rune]int
	tokens  []string // id → token
	added   addedVocab
	roles
}

// NewChars returns a character tokenizer over the distinct code points of
// symbols. It is an error for symbols to be empty, invalid UTF-8, or to
// repeat a character.
func NewChars(symbols string) (*Chars, error) {
	if symbols == "" {
		return nil, errors.New("tokenizer: NewChars: no symbols")
	}
	if !utf8.ValidString(symbols) {
		return nil, errors.New("tokenizer: NewChars: symbols are not valid UTF-8")
	}
	return newChars([]rune(symbols))
}

func newChars(symbols []rune) (*Chars, error) {
	t := &Chars{symbols: symbols, ids: map[rune]int{}, tokens: []string{CharPad, CharBOS, CharEOS, CharUNK}}
	for _, r := range symbols {
		if _, dup := t.ids[r]; dup {
			return nil, fmt.Errorf("tokenizer: NewChars: symbol %q repeated", r)
		}
		t.ids[r] = len(t.tokens)
		t.tokens = append(t.tokens, string(r))
	}
	specials := make([]AddedToken, 4)
	for i := range specials {
		specials[i] = AddedToken{ID: i, Content: t.tokens[i], Special: true}
	}
	if err := t.added.init(specials); err != nil {
		return nil, fmt.Errorf("tokenizer: NewChars: %w", err)
	}
	t.roles = roles{bos: 1, eos: 2, pad: 0}
	return t, nil
}

// UNK returns the id of <|unk|>.
func (t *Chars) UNK() int { return 3 }

// Symbols returns the symbols in id order (ids 4, 5, ...).
func (t *Chars) Symbols() string { return string(t.symbols) }

// VocabSize is 4 + the number of symbols.
func (t *Chars) VocabSize() int { return len(t.tokens) }

// TokenID returns the id of a symbol or special token.
func (t *Chars) TokenID(token string) (int, bool) {
	if a, ok := t.added.byContent[token]; ok {
		return a.ID, true
	}
	r, n := utf8.DecodeRuneInString(token)
	if n == 0 || n != len(token) {
		return 0, false
	}
	id, ok := t.ids[r]
	return id, ok
}

// Token returns the symbol or special token of id.
func (t *Chars) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) {
		return "", false
	}
	return t.tokens[id], true
}

// Encode returns one id per character; special tokens spelled in text are
// matched first; unknown characters map to <|unk|>.
func (t *Chars) Encode(text string) []int {
	ids := make([]int, 0, len(text))
	for _, seg := range t.added.split(text, func(s string) string { return s }) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		for _, r := range seg.text {
			id, ok := t.ids[r]
			if !ok {
				id = t.UNK()
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// Unknown returns the distinct characters of text that are not symbols
// (outside special tokens), in order of first appearance.
func (t *Chars) Unknown(text string) []rune {
	var out []rune
	seen := map[rune]bool{}
	for _, seg := range t.added.split(text, func(s string) string { return s }) {
		for _, r := range seg.text {
			if _, ok := t.ids[r]; !ok && !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// Decode concatenates the tokens of ids; unknown ids are skipped.
func (t *Chars) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if tok, ok := t.Token(id); ok {
			b.WriteString(tok)
		}
	}
	return b.String()
}

// Save writes t as an HF tokenizer.json (see the type's doc comment).
func (t *Chars) Save(path string) error {
	var w jsonWriter
	w.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ")
	w.addedTokens(t.added.tokens)
	w.WriteString(",\n  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": ")
	w.str(charSplitRegex)
	w.WriteString("}, \"behavior\": \"Isolated\", \"invert\": false},\n  \"post_processor\": null,\n  \"decoder\": {\"type\": \"Fuse\"},\n")
	w.WriteString("  \"model\": {\n    \"type\": \"WordLevel\",\n    \"vocab\": ")
	w.vocab(t.tokens, func(int) bool { return true })
	w.WriteString(",\n    \"unk_token\": ")
	w.str(CharUNK)
	w.WriteString("\n  }\n}\n")
	return writeFileAtomic(path, w.Bytes())
}

// parseChars reads the WordLevel form written by Chars.Save.
func parseChars(f *hfJSON) (*Chars, error) {
	var pre struct {
		Type    string `json:"type"`
		Pattern struct {
			Regex string `json:"Regex"`
		} `json:"pattern"`
	}
	if err := json.Unmarshal(f.PreTokenizer, &pre); err != nil || pre.Type != "Split" || pre.Pattern.Regex != charSplitRegex {
		return nil, fmt.Errorf("unsupported WordLevel tokenizer: want rljob's character form (Split %q), got pre_tokenizer %s", charSplitRegex, truncate(compact(f.PreTokenizer), 200))
	}
	vocab := f.Model.Vocab
	want := []string{CharPad, CharBOS, CharEOS, CharUNK}
	for id, tok := range want {
		if vocab[tok] != id {
			return nil, fmt.Errorf("character tokenizer: %s must have id %d", tok, id)
		}
	}
	symbols := make([]rune, len(vocab)-len(want))
	filled := make([]bool, len(symbols))
	for tok, id := range vocab {
		if id < len(want) {
			if tok != want[id] {
				return nil, fmt.Errorf("character tokenizer: id %d is %q, want %s", id, tok, want[id])
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(tok)
		if n == 0 || n != len(tok) || r == utf8.RuneError {
			return nil, fmt.Errorf("character tokenizer: token %q is not one character", tok)
		}
		if id-len(want) >= len(symbols) || filled[id-len(want)] {
			return nil, fmt.Errorf("character tokenizer: ids are not 0..%d", len(vocab)-1)
		}
		symbols[id-len(want)], filled[id-len(want)] = r, true
	}
	t, err := newChars(symbols)
	if err != nil {
		return nil, err
	}
	return t, nil
}
