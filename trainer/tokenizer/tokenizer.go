// Package tokenizer holds rljob's tokenizers: a character-level one for
// synthetic tasks (Chars) and byte-level BPE (BPE) loaded from an HF
// tokenizer.json (GPT-2, Qwen2/2.5/3, Llama 3 pre-tokenizers) or from GPT-2's
// encoder.json + vocab.bpe. Both save as an HF tokenizer.json and load back
// with Load.
//
// Encode never adds BOS/EOS; callers add them explicitly. Text that spells
// an added (special) token, e.g. "<|im_end|>", encodes to that token, as HF
// tokenizers does by default. Decode keeps special tokens
// (skip_special_tokens=False) so that Decode(Encode(s)) == s.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenizer maps text to token ids and back.
type Tokenizer interface {
	// Encode returns the token ids of text; no BOS/EOS is added.
	Encode(text string) []int
	// Decode returns the text of ids, special tokens included; unknown ids
	// are skipped.
	Decode(ids []int) string
	// VocabSize is the largest token id + 1.
	VocabSize() int
	// BOS, EOS and PAD are the ids of those special tokens, −1 when absent.
	BOS() int
	EOS() int
	PAD() int
	// TokenID returns the id of a token in its vocabulary form (a character
	// for Chars; byte-level, e.g. "Ġthe", for BPE; the content for special
	// tokens, e.g. "<|im_end|>").
	TokenID(token string) (int, bool)
	// Token returns the vocabulary form of id.
	Token(id int) (string, bool)
	// Save writes the tokenizer as an HF tokenizer.json, atomically.
	Save(path string) error
}

var (
	_ Tokenizer = (*Chars)(nil)
	_ Tokenizer = (*BPE)(nil)
)

// AddedToken is an entry of tokenizer.json's "added_tokens": a token matched
// in the raw text before pre-tokenization.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"` // match only as a whole word
	LStrip     bool   `json:"lstrip"`      // the match absorbs whitespace on its left
	RStrip     bool   `json:"rstrip"`      // ... and on its right
	Normalized bool   `json:"normalized"`  // matched in the normalized text
	Special    bool   `json:"special"`
}

// roles holds the BOS/EOS/PAD ids and the tokenizer_config.json entries
// that SaveDir writes back (keptConfig).
type roles struct {
	bos, eos, pad int
	config        map[string]json.RawMessage
}

// keptConfig are the tokenizer_config.json keys LoadDir keeps and SaveDir
// writes back verbatim, so that a checkpoint keeps its model's chat
// template and the special-token variables the template uses.
var keptConfig = []string{"chat_template", "unk_token", "additional_special_tokens"}

// ChatTemplateFile is the file newer HF repositories keep the chat template
// in, beside tokenizer_config.json; LoadDir reads it into chat_template.
const ChatTemplateFile = "chat_template.jinja"

// ChatTemplate returns the chat template LoadDir found (tokenizer_config.json's
// chat_template, or chat_template.jinja), as its JSON value ("" when none).
func ChatTemplate(t Tokenizer) json.RawMessage {
	if r, ok := t.(interface {
		keptConfig() map[string]json.RawMessage
	}); ok {
		return r.keptConfig()["chat_template"]
	}
	return nil
}

// IsAdded reports whether id is one of t's added tokens (special tokens
// such as "<|im_end|>" or "</s>").
func IsAdded(t Tokenizer, id int) bool {
	switch x := t.(type) {
	case *BPE:
		return x.added.byID[id]
	case *Chars:
		return x.added.byID[id]
	}
	return false
}

func (r *roles) keptConfig() map[string]json.RawMessage { return r.config }

// BOS returns the id of the beginning-of-sequence token, −1 when absent.
func (r *roles) BOS() int { return r.bos }

// EOS returns the id of the end-of-sequence token, −1 when absent.
func (r *roles) EOS() int { return r.eos }

// PAD returns the id of the padding token, −1 when absent.
func (r *roles) PAD() int { return r.pad }

func (r *roles) setRoles(x roles) { *r = x }

// Token names recognised as BOS, EOS and PAD when a tokenizer.json is loaded
// without a tokenizer_config.json (see LoadDir), in order of preference.
// Qwen's "<|endoftext|>" is EOS (its base models' eos_token) and it has no BOS.
var (
	bosNames = []string{"<|bos|>", "<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"}
	eosNames = []string{"<|eos|>", "</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"}
	padNames = []string{"<|pad|>", "<pad>", "[PAD]", "<|padding|>"}
)

func detectRoles(lookup func(string) (int, bool)) roles {
	find := func(names []string) int {
		for _, n := range names {
			if id, ok := lookup(n); ok {
				return id
			}
		}
		return -1
	}
	return roles{bos: find(bosNames), eos: find(eosNames), pad: find(padNames)}
}

// addedVocab matches added tokens in text.
type addedVocab struct {
	tokens    []AddedToken // in file order
	byContent map[string]AddedToken
	byID      map[int]bool
	// candidate indices by first byte, longest first; raw: normalized=false
	// (matched in the raw text), norm: normalized=true (matched after
	// normalization), as HF does.
	raw, norm *firstByteIndex
}

// firstByteIndex lists candidate added tokens by their first byte.
type firstByteIndex struct {
	n     int // number of tokens indexed
	first [256][]int
}

func (a *addedVocab) init(tokens []AddedToken) error {
	a.tokens = tokens
	a.byContent = map[string]AddedToken{}
	a.byID = map[int]bool{}
	a.raw, a.norm = &firstByteIndex{}, &firstByteIndex{}
	for i, t := range tokens {
		if t.Content == "" {
			return fmt.Errorf("added token %d has empty content", t.ID)
		}
		if t.ID < 0 {
			return fmt.Errorf("added token %q has negative id %d", t.Content, t.ID)
		}
		if prev, dup := a.byContent[t.Content]; dup && prev.ID != t.ID {
			return fmt.Errorf("added token %q listed with ids %d and %d", t.Content, prev.ID, t.ID)
		}
		if a.byID[t.ID] {
			if a.byContent[t.Content].ID != t.ID {
				return fmt.Errorf("added tokens share id %d", t.ID)
			}
		}
		a.byContent[t.Content] = t
		a.byID[t.ID] = true
		m := a.raw
		if t.Normalized {
			m = a.norm
		}
		m.first[t.Content[0]] = append(m.first[t.Content[0]], i)
		m.n++
	}
	for _, m := range []*firstByteIndex{a.raw, a.norm} {
		for _, idx := range m.first {
			sort.SliceStable(idx, func(i, j int) bool { return len(tokens[idx[i]].Content) > len(tokens[idx[j]].Content) })
		}
	}
	return nil
}

// segment is a piece of text: an added token (id ≥ 0) or text to tokenize.
type segment struct {
	text string
	id   int
}

// split splits text into added tokens and the text between them: tokens
// with normalized=false are matched in the raw text, then normalize is
// applied to the text between them and tokens with normalized=true are
// matched in that. Matching is leftmost-longest, as HF's Aho-Corasick.
func (a *addedVocab) split(text string, normalize func(string) string) []segment {
	var out []segment
	for _, seg := range a.match(nil, text, a.raw) {
		if seg.id >= 0 {
			out = append(out, seg)
			continue
		}
		out = a.match(out, normalize(seg.text), a.norm)
	}
	return out
}

func (a *addedVocab) match(out []segment, text string, cands *firstByteIndex) []segment {
	if cands == nil || cands.n == 0 {
		if text != "" {
			out = append(out, segment{text: text, id: -1})
		}
		return out
	}
	start := 0 // start of pending plain text
	for i := 0; i < len(text); {
		t, ok := a.longestAt(text, i, cands)
		if !ok {
			i++
			continue
		}
		b, e := i, i+len(t.Content)
		if t.LStrip {
			for b > start {
				r, w := utf8.DecodeLastRuneInString(text[start:b])
				if !unicode.IsSpace(r) {
					break
				}
				b -= w
			}
		}
		if t.RStrip {
			e = skip(text, e, unicode.IsSpace, -1)
		}
		if b > start {
			out = append(out, segment{text: text[start:b], id: -1})
		}
		out = append(out, segment{id: t.ID})
		start, i = e, e
	}
	if start < len(text) {
		out = append(out, segment{text: text[start:], id: -1})
	}
	return out
}

// longestAt returns the longest added token matching text at i.
func (a *addedVocab) longestAt(text string, i int, cands *firstByteIndex) (AddedToken, bool) {
	for _, k := range cands.first[text[i]] {
		t := a.tokens[k]
		if !strings.HasPrefix(text[i:], t.Content) {
			continue
		}
		if t.SingleWord {
			before, _ := utf8.DecodeLastRuneInString(text[:i])
			after, _ := utf8.DecodeRuneInString(text[i+len(t.Content):])
			if i > 0 && isWordRune(before) || i+len(t.Content) < len(text) && isWordRune(after) {
				continue
			}
		}
		return t, true
	}
	return AddedToken{}, false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' }

// Load reads an HF tokenizer.json: a byte-level BPE model (GPT-2, Qwen2/3,
// Llama 3 pre-tokenizers) or rljob's character-level WordLevel form (see
// Chars). BOS/EOS/PAD are recognised by token name; LoadDir also reads
// tokenizer_config.json.
func Load(path string) (Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := parseTokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// LoadDir loads dir/tokenizer.json and, when dir/tokenizer_config.json exists,
// takes BOS/EOS/PAD from its bos_token, eos_token and pad_token (a string, an
// {"content": ...} object, or null for none), as HF transformers does. It
// keeps the chat template (tokenizer_config.json's chat_template, or
// dir/chat_template.jinja, which wins as in transformers), unk_token and
// additional_special_tokens for SaveDir.
func LoadDir(dir string) (Tokenizer, error) {
	t, err := Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	cfg := map[string]json.RawMessage{}
	data, err := os.ReadFile(cfgPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if err == nil {
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", cfgPath, err)
		}
	}
	r := roles{bos: t.BOS(), eos: t.EOS(), pad: t.PAD(), config: map[string]json.RawMessage{}}
	for _, key := range keptConfig {
		if v, ok := cfg[key]; ok && !isNull(v) {
			r.config[key] = v
		}
	}
	switch src, err := os.ReadFile(filepath.Join(dir, ChatTemplateFile)); {
	case err == nil:
		r.config["chat_template"], _ = json.Marshal(string(src)) // a string always marshals
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	for key, dst := range map[string]*int{"bos_token": &r.bos, "eos_token": &r.eos, "pad_token": &r.pad} {
		raw, ok := cfg[key]
		if !ok {
			continue
		}
		id, err := roleID(t, raw)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %s: %w", cfgPath, key, err)
		}
		*dst = id
	}
	t.(interface{ setRoles(roles) }).setRoles(r)
	return t, nil
}

// roleID resolves a tokenizer_config.json token entry to an id (−1 for null).
func roleID(t Tokenizer, raw json.RawMessage) (int, error) {
	var content string
	var obj struct {
		Content *string `json:"content"`
	}
	switch {
	case string(raw) == "null":
		return -1, nil
	case json.Unmarshal(raw, &content) == nil:
	case json.Unmarshal(raw, &obj) == nil && obj.Content != nil:
		content = *obj.Content
	default:
		return 0, fmt.Errorf("want a string, {\"content\": ...} or null, got %s", raw)
	}
	id, ok := t.TokenID(content)
	if !ok {
		return 0, fmt.Errorf("token %q is not in the vocabulary", content)
	}
	return id, nil
}

// SaveDir writes dir/tokenizer.json (t.Save) and dir/tokenizer_config.json
// naming t's BOS/EOS/PAD tokens (and the chat template and entries LoadDir
// kept), so that LoadDir and HF transformers'
// AutoTokenizer (PreTrainedTokenizerFast) restore the same roles.
func SaveDir(t Tokenizer, dir string) error {
	if err := t.Save(filepath.Join(dir, "tokenizer.json")); err != nil {
		return err
	}
	name := func(id int) any {
		if s, ok := t.Token(id); ok {
			return s
		}
		return nil
	}
	cfg := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"bos_token":                    name(t.BOS()),
		"eos_token":                    name(t.EOS()),
		"pad_token":                    name(t.PAD()),
		"clean_up_tokenization_spaces": false,
	}
	if r, ok := t.(interface {
		keptConfig() map[string]json.RawMessage
	}); ok {
		for k, v := range r.keptConfig() {
			cfg[k] = v
		}
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("tokenizer: save config: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "tokenizer_config.json"), append(data, '\n'))
}

// writeFileAtomic writes data to path durably: temp file in the same
// directory, fsync, rename, fsync the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tokenizer: save %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes 0600
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tokenizer: save %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("tokenizer: save %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("tokenizer: save %s: sync dir: %w", path, err)
	}
	return nil
}
