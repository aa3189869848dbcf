package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// storiesDir is llama2.c's stories260K in HF format, copied into the
// project (examples/stories/model, MIT): a SentencePiece-style BPE
// tokenizer.json with byte fallback.
const storiesDir = "../../examples/stories/model"

// storiesGolden is the part of golden.json the tokenizer tests use
// (produced with sentencepiece and PyTorch, see examples/stories/README.md).
type storiesGolden struct {
	SampleStoryIDs []int  `json:"sample_story_ids"`
	Prompt         string `json:"prompt"`
	PromptIDs      []int  `json:"prompt_ids"`
	GreedyIDs      []int  `json:"greedy_from_bos_ids"`
	GreedyText     string `json:"greedy_from_bos_text"`
}

func loadStories(t *testing.T) (Tokenizer, storiesGolden) {
	t.Helper()
	tok, err := LoadDir(storiesDir)
	if err != nil {
		t.Fatal(err)
	}
	var g storiesGolden
	data, err := os.ReadFile(filepath.Join(storiesDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return tok, g
}

// TestStoriesTokenizerGolden checks the reference ids of golden.json:
// [BOS] + Encode(text) for the sample story (the file without its final
// newline, as golden.json was made) and the prompt, and Decode of
// the greedy continuation (without its BOS) against its reference text.
func TestStoriesTokenizerGolden(t *testing.T) {
	tok, g := loadStories(t)
	story, err := os.ReadFile(filepath.Join(storiesDir, "sample_story.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 1 || tok.EOS() != 2 || tok.PAD() != -1 || tok.VocabSize() != 512 {
		t.Fatalf("BOS %d EOS %d PAD %d vocab %d, want 1 2 -1 512", tok.BOS(), tok.EOS(), tok.PAD(), tok.VocabSize())
	}
	for _, c := range []struct {
		name, text string
		want       []int
	}{{"sample story", strings.TrimSuffix(string(story), "\n"), g.SampleStoryIDs}, {"prompt", g.Prompt, g.PromptIDs}} {
		got := append([]int{tok.BOS()}, tok.Encode(c.text)...)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: ids\n got %v\nwant %v", c.name, got, c.want)
		}
	}
	if got := tok.Decode(g.GreedyIDs[1:]); got != g.GreedyText {
		t.Errorf("decode greedy ids:\n got %q\nwant %q", got, g.GreedyText)
	}
}

// TestStoriesTokenizerCases checks the normalizer, byte fallback and the
// decoder chain on hand-worked strings.
func TestStoriesTokenizerCases(t *testing.T) {
	tok, _ := loadStories(t)
	id := func(s string) int {
		t.Helper()
		v, ok := tok.TokenID(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		return v
	}
	// "😀" (F0 9F 98 80) has no piece: byte fallback. "▁" then the bytes.
	emoji := []int{id("▁"), id("<0xF0>"), id("<0x9F>"), id("<0x98>"), id("<0x80>")}
	cases := []struct {
		name, text string
		want       []int
		decoded    string
	}{
		{"empty", "", nil, ""},
		{"only spaces", "   ", nil, ""},
		{"byte fallback", "😀", emoji, "😀"},
		{"spaces collapse and trim", "  a   b ", []int{id("▁a"), id("▁b")}, "a b"},
		{"special token", "<s>", []int{1}, "<s>"},
		{"special token splits", "a</s>a", []int{id("▁a"), 2, id("▁a")}, "a</s> a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := tok.Encode(c.text)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
			}
			if d := tok.Decode(got); d != c.decoded {
				t.Errorf("Decode = %q, want %q", d, c.decoded)
			}
		})
	}
	// An invalid byte run decodes to one U+FFFD per byte, as HF's ByteFallback.
	if d := tok.Decode([]int{id("<0xE2>"), id("<0x82>"), id("▁a")}); d != "\uFFFD\uFFFD a" {
		t.Errorf("decode invalid bytes = %q", d)
	}
}

// TestStoriesSaveLoad round-trips the tokenizer through Save.
func TestStoriesSaveLoad(t *testing.T) {
	tok, g := loadStories(t)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	text := g.GreedyText + " naïve € 😀"
	if a, b := tok.Encode(text), back.Encode(text); !reflect.DeepEqual(a, b) {
		t.Errorf("reloaded encodes differently:\n%v\n%v", a, b)
	}
	if a, b := tok.Decode(g.GreedyIDs), back.Decode(g.GreedyIDs); a != b {
		t.Errorf("reloaded decodes differently: %q vs %q", a, b)
	}
}

// TestSentencePieceErrors: a component rljob does not implement is named.
func TestSentencePieceErrors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(storiesDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(d map[string]any)) []byte {
		var d map[string]any
		_ = json.Unmarshal(data, &d)
		f(d)
		out, _ := json.Marshal(d)
		return out
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"normalizer", edit(func(d map[string]any) {
			d["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "Precompiled", "precompiled_charsmap": "AA=="}}}
		}), `normalizer component "Precompiled" is not supported`},
		{"decoder", edit(func(d map[string]any) {
			d["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{map[string]any{"type": "CTC"}}}
		}), `decoder component "CTC" is not supported`},
		{"pre_tokenizer", edit(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
		}), `pre_tokenizer "Metaspace" is not supported`},
		{"missing byte", edit(func(d map[string]any) {
			delete(d["model"].(map[string]any)["vocab"].(map[string]any), "<0x41>")
		}), "lacks <0x41>"},
		{"regex", edit(func(d map[string]any) {
			d["normalizer"] = map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": `(?<=a)b`}, "content": ""}
		}), "not supported by Go's regexp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeTemp(t, "tokenizer.json", c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestChatTemplateKept: LoadDir reads chat_template.jinja (or
// tokenizer_config.json's chat_template) and SaveDir writes it into the
// saved tokenizer_config.json, so a checkpoint keeps its model's template.
func TestChatTemplateKept(t *testing.T) {
	src := t.TempDir()
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(storiesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const tmpl = "{{ bos_token }}{% for m in messages %}{{ m.content }}\n{% endfor %}"
	if err := os.WriteFile(filepath.Join(src, ChatTemplateFile), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := json.Unmarshal(ChatTemplate(tok), &got); err != nil || got != tmpl {
		t.Fatalf("ChatTemplate = %q, %v; want %q", got, err, tmpl)
	}
	dst := t.TempDir()
	if err := SaveDir(tok, dst); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	data, err := os.ReadFile(filepath.Join(dst, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["chat_template"] != tmpl || cfg["unk_token"] != "<unk>" || cfg["bos_token"] != "<s>" {
		t.Errorf("saved config %v lacks the template or tokens", cfg)
	}
	back, err := LoadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(ChatTemplate(back)) != string(ChatTemplate(tok)) || back.BOS() != 1 || back.EOS() != 2 {
		t.Errorf("reloaded: template %s, BOS %d, EOS %d", ChatTemplate(back), back.BOS(), back.EOS())
	}
}
