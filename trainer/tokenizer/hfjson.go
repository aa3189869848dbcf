package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// hfJSON is the top level of an HF tokenizer.json, decoded in one pass.
type hfJSON struct {
	Version       json.RawMessage `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         *hfModel        `json:"model"`
}

// hfModel is tokenizer.json's "model" (BPE or WordLevel).
type hfModel struct {
	Type   string          `json:"type"`
	Vocab  map[string]int  `json:"vocab"`
	Merges json.RawMessage `json:"merges"`

	Dropout                 json.RawMessage `json:"dropout"`
	UnkToken                json.RawMessage `json:"unk_token"`
	ContinuingSubwordPrefix json.RawMessage `json:"continuing_subword_prefix"`
	EndOfWordSuffix         json.RawMessage `json:"end_of_word_suffix"`
	FuseUnk                 json.RawMessage `json:"fuse_unk"`
	ByteFallback            json.RawMessage `json:"byte_fallback"`
	IgnoreMerges            json.RawMessage `json:"ignore_merges"`
}

// fields returns the model's options (all but vocab and merges) by name.
func (m *hfModel) fields() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range map[string]json.RawMessage{"dropout": m.Dropout, "unk_token": m.UnkToken,
		"continuing_subword_prefix": m.ContinuingSubwordPrefix, "end_of_word_suffix": m.EndOfWordSuffix,
		"fuse_unk": m.FuseUnk, "byte_fallback": m.ByteFallback, "ignore_merges": m.IgnoreMerges} {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// rawSections are the parts of a loaded tokenizer.json that Save writes back
// verbatim (nil fields are written as null).
type rawSections struct {
	truncation, padding                              json.RawMessage
	normalizer, preTokenizer, postProcessor, decoder json.RawMessage
	model                                            map[string]json.RawMessage // model options except type, vocab and merges
}

// typed reads the "type" field of a JSON object section ("" for null).
func typed(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var v struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	return v.Type, nil
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func parseTokenizerJSON(data []byte) (Tokenizer, error) {
	var f hfJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if f.Model == nil {
		return nil, errors.New("no model")
	}
	if f.Model.Vocab == nil {
		return nil, errors.New("model has no vocab")
	}
	raw := rawSections{truncation: f.Truncation, padding: f.Padding, normalizer: f.Normalizer,
		preTokenizer: f.PreTokenizer, postProcessor: f.PostProcessor, decoder: f.Decoder, model: f.Model.fields()}
	switch f.Model.Type {
	case "BPE", "": // old files omit the model type
		return parseBPE(&f, raw)
	case "WordLevel":
		return parseChars(&f)
	}
	return nil, fmt.Errorf("unsupported model type %q (want byte-level BPE or rljob's char WordLevel)", f.Model.Type)
}

func parseBPE(f *hfJSON, raw rawSections) (*BPE, error) {
	m := raw.model
	merges, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	// Options we cannot honour are errors rather than silently different ids.
	for _, k := range []string{"continuing_subword_prefix", "end_of_word_suffix"} {
		if v := m[k]; !isNull(v) && string(v) != `""` {
			return nil, fmt.Errorf("model.%s %s is not supported (byte-level BPE only)", k, v)
		}
	}
	if v := m["dropout"]; !isNull(v) && string(v) != "0" && string(v) != "0.0" {
		return nil, fmt.Errorf("model.dropout %s is not supported", v)
	}
	ignoreMerges := false
	if v := m["ignore_merges"]; !isNull(v) {
		if err := json.Unmarshal(v, &ignoreMerges); err != nil {
			return nil, fmt.Errorf("model.ignore_merges: %w", err)
		}
	}
	if dt, err := typed(f.Decoder); err == nil && dt != "ByteLevel" && dt != "" {
		return parseSentencePiece(f, raw, merges, ignoreMerges)
	}
	if v := m["byte_fallback"]; !isNull(v) && string(v) != "false" {
		return nil, errors.New("model.byte_fallback is only supported with a SentencePiece-style decoder (Replace ▁, ByteFallback, Fuse, Strip), not with ByteLevel")
	}

	nfc := false
	switch nt, err := typed(f.Normalizer); {
	case err != nil:
		return nil, fmt.Errorf("normalizer: %w", err)
	case nt == "":
	case nt == "NFC":
		nfc = true
	default:
		return nil, fmt.Errorf("normalizer %s is not supported with a ByteLevel decoder (want NFC or null)", truncate(compact(f.Normalizer), 200))
	}
	pat, addPrefix, err := parsePreTokenizer(f.PreTokenizer)
	if err != nil {
		return nil, err
	}
	if dt, err := typed(f.Decoder); err != nil || dt != "ByteLevel" {
		return nil, fmt.Errorf("decoder %s is not supported (want ByteLevel, or a SentencePiece-style %s chain)", truncate(compact(f.Decoder), 200), specDecoders)
	}
	t, err := newBPE(f.Model.Vocab, merges, f.AddedTokens, pat, nil)
	if err != nil {
		return nil, err
	}
	t.addPrefixSpace, t.nfc, t.ignoreMerges, t.raw = addPrefix, nfc, ignoreMerges, raw
	return t, nil
}

// parseMerges reads model.merges in either form: "a b" strings (older
// tokenizers) or ["a", "b"] pairs (tokenizers ≥ 0.20).
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	body := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(raw), []byte("[")))
	if len(body) > 0 && body[0] == '"' {
		var strs []string
		if err := json.Unmarshal(raw, &strs); err != nil {
			return nil, fmt.Errorf("model.merges: %w", err)
		}
		out := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] %q is not \"a b\"", i, s)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("model.merges: want \"a b\" strings or [a, b] pairs: %w", err)
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("model.merges[%d] has %d parts, want 2", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// byteLevelOpts are the fields of a ByteLevel pre-tokenizer.
type byteLevelOpts struct {
	Type           string `json:"type"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"` // default true
}

// parsePreTokenizer recognises the supported byte-level pre-tokenizers:
// ByteLevel with use_regex (GPT-2's pattern), or Sequence[Split(regex,
// Isolated), ByteLevel(use_regex false)] with one of the known patterns.
func parsePreTokenizer(raw json.RawMessage) (pattern, bool, error) {
	bad := func(why string) (pattern, bool, error) {
		return 0, false, fmt.Errorf("unsupported pre_tokenizer %s: %s", truncate(compact(raw), 300), why)
	}
	pt, err := typed(raw)
	if err != nil {
		return bad(err.Error())
	}
	switch pt {
	case "ByteLevel":
		var bl byteLevelOpts
		if err := json.Unmarshal(raw, &bl); err != nil {
			return bad(err.Error())
		}
		if bl.UseRegex != nil && !*bl.UseRegex {
			return bad("ByteLevel without a regex")
		}
		return patGPT2, bl.AddPrefixSpace, nil
	case "Sequence":
		var seq struct {
			Pretokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &seq); err != nil {
			return bad(err.Error())
		}
		if len(seq.Pretokenizers) != 2 {
			return bad("want Split then ByteLevel")
		}
		var split struct {
			Type    string `json:"type"`
			Pattern struct {
				Regex  *string `json:"Regex"`
				String *string `json:"String"`
			} `json:"pattern"`
			Behavior string `json:"behavior"`
			Invert   bool   `json:"invert"`
		}
		var bl byteLevelOpts
		if json.Unmarshal(seq.Pretokenizers[0], &split) != nil || split.Type != "Split" ||
			json.Unmarshal(seq.Pretokenizers[1], &bl) != nil || bl.Type != "ByteLevel" {
			return bad("want Split then ByteLevel")
		}
		if split.Pattern.Regex == nil || split.Behavior != "Isolated" || split.Invert {
			return bad("want a Split with a Regex, behavior Isolated, invert false")
		}
		if bl.UseRegex == nil || *bl.UseRegex {
			return bad("ByteLevel after Split must have use_regex false")
		}
		p, ok := patternOf(*split.Pattern.Regex)
		if !ok {
			return bad(fmt.Sprintf("unknown Split regex %q (known: GPT-2, Qwen2/3, Llama 3)", *split.Pattern.Regex))
		}
		return p, bl.AddPrefixSpace, nil
	}
	return bad("want ByteLevel or Sequence[Split, ByteLevel]")
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// jsonWriter builds a tokenizer.json in HF's layout.
type jsonWriter struct{ bytes.Buffer }

// str writes s as a JSON string without HTML escaping (as serde_json does).
func (w *jsonWriter) str(s string) {
	enc := json.NewEncoder(&w.Buffer)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	w.Truncate(w.Len() - 1)
}

// raw writes a JSON section, or null.
func (w *jsonWriter) raw(r json.RawMessage) {
	if isNull(r) {
		w.WriteString("null")
		return
	}
	w.Write(bytes.TrimSpace(r))
}

// addedTokens writes the "added_tokens" array.
func (w *jsonWriter) addedTokens(tokens []AddedToken) {
	if len(tokens) == 0 {
		w.WriteString("[]")
		return
	}
	w.WriteString("[")
	for i, t := range tokens {
		if i > 0 {
			w.WriteString(",")
		}
		w.WriteString("\n    {\"id\": ")
		fmt.Fprintf(w, "%d", t.ID)
		w.WriteString(", \"content\": ")
		w.str(t.Content)
		fmt.Fprintf(w, ", \"single_word\": %t, \"lstrip\": %t, \"rstrip\": %t, \"normalized\": %t, \"special\": %t}",
			t.SingleWord, t.LStrip, t.RStrip, t.Normalized, t.Special)
	}
	w.WriteString("\n  ]")
}

// vocab writes a {"token": id, ...} object in id order.
func (w *jsonWriter) vocab(tokens []string, include func(id int) bool) {
	w.WriteString("{")
	first := true
	for id, tok := range tokens {
		if !include(id) {
			continue
		}
		if !first {
			w.WriteString(",")
		}
		first = false
		w.WriteString("\n      ")
		w.str(tok)
		fmt.Fprintf(w, ": %d", id)
	}
	w.WriteString("\n    }")
}

// GPT-2's tokenizer.json sections, as HF hub's gpt2/tokenizer.json has them.
var (
	gpt2PreTokenizer  = json.RawMessage(`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`)
	gpt2PostProcessor = json.RawMessage(`{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}`)
	gpt2Decoder       = json.RawMessage(`{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}`)
	bpeModelFields    = []string{"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"}
	bpeModelDefaults  = map[string]json.RawMessage{"type": json.RawMessage(`"BPE"`), "dropout": json.RawMessage(`null`), "unk_token": json.RawMessage(`null`),
		"continuing_subword_prefix": json.RawMessage(`""`), "end_of_word_suffix": json.RawMessage(`""`), "fuse_unk": json.RawMessage(`false`),
		"byte_fallback": json.RawMessage(`false`), "ignore_merges": json.RawMessage(`false`)}
)

// Save writes t as an HF tokenizer.json. A tokenizer loaded from a
// tokenizer.json keeps its normalizer, pre-tokenizer, post-processor and
// decoder sections verbatim; one loaded from GPT-2's files gets HF's GPT-2
// sections. Merges are written as "a b" strings (readable by every
// tokenizers version) unless a token contains a space.
func (t *BPE) Save(path string) error {
	return writeFileAtomic(path, t.marshal())
}

func (t *BPE) marshal() []byte {
	r := t.raw
	if r.model == nil { // from GPT-2's encoder.json + vocab.bpe
		r.preTokenizer, r.postProcessor, r.decoder = gpt2PreTokenizer, gpt2PostProcessor, gpt2Decoder
	}
	var w jsonWriter
	w.Grow(64 * len(t.tokens))
	w.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": ")
	w.raw(r.truncation)
	w.WriteString(",\n  \"padding\": ")
	w.raw(r.padding)
	w.WriteString(",\n  \"added_tokens\": ")
	w.addedTokens(t.added.tokens)
	for _, sec := range []struct {
		name string
		raw  json.RawMessage
	}{{"normalizer", r.normalizer}, {"pre_tokenizer", r.preTokenizer}, {"post_processor", r.postProcessor}, {"decoder", r.decoder}} {
		fmt.Fprintf(&w, ",\n  %q: ", sec.name)
		w.raw(sec.raw)
	}
	w.WriteString(",\n  \"model\": {")
	fields := map[string]json.RawMessage{}
	for k, v := range bpeModelDefaults {
		fields[k] = v
	}
	for k, v := range r.model {
		fields[k] = v
	}
	keys := append([]string(nil), bpeModelFields...)
	var extra []string
	for k := range fields {
		if _, known := bpeModelDefaults[k]; !known {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range append(keys, extra...) {
		fmt.Fprintf(&w, "\n    %q: ", k)
		w.raw(fields[k])
		w.WriteString(",")
	}
	w.WriteString("\n    \"vocab\": ")
	w.vocab(t.tokens, func(id int) bool { _, ok := t.vocab[t.tokens[id]]; return ok && t.vocab[t.tokens[id]] == id })
	w.WriteString(",\n    \"merges\": [")
	arrays := false
	for _, m := range t.mergeStr {
		if strings.Contains(m[0], " ") || strings.Contains(m[1], " ") {
			arrays = true
			break
		}
	}
	for i, m := range t.mergeStr {
		if i > 0 {
			w.WriteString(",")
		}
		w.WriteString("\n      ")
		if arrays {
			w.WriteString("[")
			w.str(m[0])
			w.WriteString(", ")
			w.str(m[1])
			w.WriteString("]")
		} else {
			w.str(m[0] + " " + m[1])
		}
	}
	w.WriteString("\n    ]\n  }\n}\n")
	return w.Bytes()
}
