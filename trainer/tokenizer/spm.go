package tokenizer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SentencePiece-style BPE, the tokenizer.json that HF's converters write for
// Llama-2, Mistral, Gemma and llama2.c's models: no byte-to-unicode map and
// no pre-tokenizer; a normalizer turns the text into "▁"-joined words
// (Replace, Prepend, ...); BPE merges Unicode characters, and a character
// missing from the vocabulary becomes its UTF-8 bytes as <0xNN> tokens
// (byte_fallback) or the unk token; the decoder chain (Replace "▁"→" ",
// ByteFallback, Fuse, Strip) turns tokens back into text.
//
// The whole normalized segment between two added tokens is one BPE word, as
// in HF tokenizers when pre_tokenizer is null. The components implemented
// are those of specNormalizers and specDecoders; any other is an error that
// names it.

// spModel is the SentencePiece-style part of a BPE.
type spModel struct {
	normalize func(string) string
	decode    func([]string) []string
	// byteFallback: a character with no token becomes its bytes' <0xNN>
	// tokens (byteIDs); otherwise the unk token.
	byteFallback bool
	byteIDs      [256]int32
	unk          int32 // −1: none
	fuseUnk      bool  // consecutive unknown characters give one unk
}

// Implemented components, for error messages.
const (
	specNormalizers = "Sequence, Replace, Prepend, Strip, Lowercase, NFC, NFD, NFKC, NFKD"
	specDecoders    = "Sequence, Replace, ByteFallback, Fuse, Strip, Metaspace"
)

// parseSentencePiece finishes parseBPE for a tokenizer.json whose decoder is
// not ByteLevel.
func parseSentencePiece(f *hfJSON, raw rawSections, merges [][2]string, ignoreMerges bool) (*BPE, error) {
	sp := &spModel{unk: -1}
	m := raw.model
	if v := m["byte_fallback"]; !isNull(v) {
		if err := json.Unmarshal(v, &sp.byteFallback); err != nil {
			return nil, fmt.Errorf("model.byte_fallback: %w", err)
		}
	}
	if v := m["fuse_unk"]; !isNull(v) {
		if err := json.Unmarshal(v, &sp.fuseUnk); err != nil {
			return nil, fmt.Errorf("model.fuse_unk: %w", err)
		}
	}
	if v := m["unk_token"]; !isNull(v) {
		var name string
		if err := json.Unmarshal(v, &name); err != nil {
			return nil, fmt.Errorf("model.unk_token: %w", err)
		}
		id, ok := f.Model.Vocab[name]
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q is not in the vocabulary", name)
		}
		sp.unk = int32(id)
	}
	if sp.byteFallback {
		for b := range 256 {
			name := fmt.Sprintf("<0x%02X>", b)
			id, ok := f.Model.Vocab[name]
			if !ok {
				return nil, fmt.Errorf("model.byte_fallback is true but the vocabulary lacks %s", name)
			}
			sp.byteIDs[b] = int32(id)
		}
	} else if sp.unk < 0 {
		return nil, fmt.Errorf("model has neither byte_fallback nor an unk_token: characters outside the vocabulary cannot be encoded")
	}
	if !isNull(f.PreTokenizer) {
		pt, _ := typed(f.PreTokenizer)
		return nil, fmt.Errorf("pre_tokenizer %q is not supported with decoder %s (rljob implements a SentencePiece-style BPE with pre_tokenizer null, and byte-level BPE with a ByteLevel decoder)",
			pt, truncate(compact(f.Decoder), 200))
	}
	var err error
	if sp.normalize, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if sp.decode, err = parseDecoder(f.Decoder); err != nil {
		return nil, err
	}
	t, err := newBPE(f.Model.Vocab, merges, f.AddedTokens, 0, sp)
	if err != nil {
		return nil, err
	}
	t.ignoreMerges, t.raw = ignoreMerges, raw
	return t, nil
}

// hfPattern is the "pattern" of a Replace normalizer or decoder.
type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// replacer returns the function of a Replace component: every match of the
// pattern (a literal string or a regular expression) becomes content,
// literally.
func replacer(where string, p hfPattern, content string) (func(string) string, error) {
	switch {
	case p.String != nil:
		old := *p.String
		if old == "" {
			return nil, fmt.Errorf("%s: Replace with an empty String pattern", where)
		}
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	case p.Regex != nil:
		re, err := regexp.Compile(*p.Regex)
		if err != nil {
			return nil, fmt.Errorf("%s: Replace regex %q is not supported by Go's regexp: %w", where, *p.Regex, err)
		}
		return func(s string) string { return re.ReplaceAllLiteralString(s, content) }, nil
	}
	return nil, fmt.Errorf("%s: Replace needs a String or Regex pattern", where)
}

// hfComponent is a normalizer or decoder entry (fields of all known types).
type hfComponent struct {
	Type          string            `json:"type"`
	Normalizers   []json.RawMessage `json:"normalizers"`
	Decoders      []json.RawMessage `json:"decoders"`
	Pattern       hfPattern         `json:"pattern"`
	Content       string            `json:"content"`
	Prepend       string            `json:"prepend"`
	StripLeft     *bool             `json:"strip_left"`
	StripRight    *bool             `json:"strip_right"`
	Start         int               `json:"start"`
	Stop          int               `json:"stop"`
	Replacement   string            `json:"replacement"`
	PrependScheme string            `json:"prepend_scheme"`
	AddPrefixSpc  *bool             `json:"add_prefix_space"`
}

// parseNormalizer returns the normalizer of a SentencePiece-style
// tokenizer.json (identity for null).
func parseNormalizer(raw json.RawMessage) (func(string) string, error) {
	if isNull(raw) {
		return func(s string) string { return s }, nil
	}
	var c hfComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	switch c.Type {
	case "Sequence":
		steps := make([]func(string) string, len(c.Normalizers))
		for i, r := range c.Normalizers {
			var err error
			if steps[i], err = parseNormalizer(r); err != nil {
				return nil, err
			}
		}
		return func(s string) string {
			for _, f := range steps {
				s = f(s)
			}
			return s
		}, nil
	case "Replace":
		return replacer("normalizer", c.Pattern, c.Content)
	case "Prepend":
		p := c.Prepend
		return func(s string) string { // HF prepends to non-empty text only
			if s == "" {
				return s
			}
			return p + s
		}, nil
	case "Strip":
		left, right := c.StripLeft == nil || *c.StripLeft, c.StripRight == nil || *c.StripRight
		return func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}, nil
	case "Lowercase":
		return strings.ToLower, nil
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	}
	return nil, fmt.Errorf("normalizer component %q is not supported (rljob implements %s)", c.Type, specNormalizers)
}

// parseDecoder returns the decoder chain of a SentencePiece-style
// tokenizer.json: each component maps the list of token strings to a new
// list, as HF's decode_chain does; the result is concatenated.
func parseDecoder(raw json.RawMessage) (func([]string) []string, error) {
	if isNull(raw) {
		return func(t []string) []string { return t }, nil
	}
	var c hfComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	perToken := func(f func(i int, s string) string) func([]string) []string {
		return func(toks []string) []string {
			for i, s := range toks {
				toks[i] = f(i, s)
			}
			return toks
		}
	}
	switch c.Type {
	case "Sequence":
		steps := make([]func([]string) []string, len(c.Decoders))
		for i, r := range c.Decoders {
			var err error
			if steps[i], err = parseDecoder(r); err != nil {
				return nil, err
			}
		}
		return func(toks []string) []string {
			for _, f := range steps {
				toks = f(toks)
			}
			return toks
		}, nil
	case "Replace":
		f, err := replacer("decoder", c.Pattern, c.Content)
		if err != nil {
			return nil, err
		}
		return perToken(func(_ int, s string) string { return f(s) }), nil
	case "ByteFallback":
		return byteFallbackDecode, nil
	case "Fuse":
		return func(toks []string) []string { return []string{strings.Join(toks, "")} }, nil
	case "Strip":
		content, start, stop := c.Content, c.Start, c.Stop
		return perToken(func(_ int, s string) string {
			for k := 0; k < start && strings.HasPrefix(s, content) && content != ""; k++ {
				s = s[len(content):]
			}
			for k := 0; k < stop && strings.HasSuffix(s, content) && content != ""; k++ {
				s = s[:len(s)-len(content)]
			}
			return s
		}), nil
	case "Metaspace":
		repl := c.Replacement
		if repl == "" {
			repl = "▁"
		}
		strip := c.PrependScheme != "never" && (c.AddPrefixSpc == nil || *c.AddPrefixSpc)
		return perToken(func(i int, s string) string {
			s = strings.ReplaceAll(s, repl, " ")
			if i == 0 && strip {
				s = strings.TrimPrefix(s, " ")
			}
			return s
		}), nil
	}
	return nil, fmt.Errorf("decoder component %q is not supported (rljob implements %s, and ByteLevel alone)", c.Type, specDecoders)
}

// byteFallbackDecode turns each run of <0xNN> tokens into the text of its
// bytes, or one U+FFFD per byte when they are not valid UTF-8 (HF's
// ByteFallback decoder).
func byteFallbackDecode(toks []string) []string {
	out := make([]string, 0, len(toks))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, s := range toks {
		if b, ok := byteToken(s); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, s)
	}
	flush()
	return out
}

// byteToken parses "<0xNN>".
func byteToken(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range s[3:5] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = byte(c - '0')
		case 'A' <= c && c <= 'F':
			v = byte(c-'A') + 10
		case 'a' <= c && c <= 'f':
			v = byte(c-'a') + 10
		default:
			return 0, false
		}
		b = b<<4 | v
	}
	return b, true
}

// encodeSP encodes text: added tokens are split out, each segment between
// them is normalized and encoded as one BPE word.
func (t *BPE) encodeSP(text string) []int {
	var ids []int
	for _, seg := range t.added.split(text, t.sp.normalize) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		for _, id := range t.wordSP(seg.text) {
			ids = append(ids, int(id))
		}
	}
	return ids
}

// wordSP encodes one normalized word: its characters (byte fallback or unk
// for those without a token), then the merges.
func (t *BPE) wordSP(w string) []int32 {
	if w == "" {
		return nil
	}
	if t.ignoreMerges {
		if id, ok := t.vocab[w]; ok {
			return []int32{int32(id)}
		}
	}
	sp := t.sp
	ids := make([]int32, 0, len(w))
	var buf [utf8.UTFMax]byte
	for _, r := range w {
		n := utf8.EncodeRune(buf[:], r)
		if id, ok := t.vocab[string(buf[:n])]; ok {
			ids = append(ids, int32(id))
			continue
		}
		if sp.byteFallback {
			for _, b := range buf[:n] {
				ids = append(ids, sp.byteIDs[b])
			}
			continue
		}
		if sp.fuseUnk && len(ids) > 0 && ids[len(ids)-1] == sp.unk {
			continue
		}
		ids = append(ids, sp.unk)
	}
	return t.mergeIDs(ids)
}

// decodeSP maps ids to their token strings (added tokens as their content,
// unknown ids skipped) and runs the decoder chain.
func (t *BPE) decodeSP(ids []int) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
			continue
		}
		toks = append(toks, t.tokens[id])
	}
	return strings.Join(t.sp.decode(toks), "")
}
