package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rljob/rljob/trainer/tokenizer"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustMessages(t *testing.T, s string) Messages {
	t.Helper()
	m, err := ParseMessages([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestErrors: each failure names the model folder, the message and the
// template's words.
func TestErrors(t *testing.T) {
	roles := `{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('Unsupported role: ' + m.role) }}{% endif %}[{{ m.role }}] {{ m.content }}{% endfor %}`
	cases := []struct {
		name     string
		template string
		messages string
		kind     string
		index    int
		want     []string
	}{
		{"syntax", `{% for m in messages %}{{ m.content }}`, `[{"role": "user", "content": "a"}]`, KindSyntax, -1, []string{"syntax error"}},
		{"unsupported role", roles, `[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "tool", "content": "c"}]`,
			KindRaise, 2, []string{`message 2 (role "tool")`, "the template raised: Unsupported role: tool"}},
		{"only with the generation prompt", `{% if add_generation_prompt %}{{ raise_exception('no generation here') }}{% endif %}x`,
			`[{"role": "user", "content": "a"}]`, KindRaise, -1, []string{"no generation here (with add_generation_prompt)"}},
		{"not a list", roles, `{"role": "user"}`, KindMessage, -1, []string{"JSON list"}},
		{"no role", roles, `[{"role": "user", "content": "a"}, {"content": "b"}]`, KindMessage, 1, []string{`message 1: no string "role"`}},
		{"content type", roles, `[{"role": "user", "content": 3}]`, KindMessage, 0, []string{`"content" must be`}},
		{"empty", roles, `[]`, KindMessage, -1, []string{"no messages"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{TemplateFile: c.template})
			var err error
			tm, err := Load(dir)
			if err == nil {
				var msgs Messages
				if msgs, err = ParseMessages([]byte(c.messages)); err == nil {
					_, err = tm.Render(msgs, Options{AddGenerationPrompt: true})
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != c.kind || e.Index != c.index {
				t.Fatalf("error %#v (%v), want kind %s at message %d", e, err, c.kind, c.index)
			}
			if c.kind != KindMessage && !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the folder %s", err, dir)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLoad: where the template comes from.
func TestLoad(t *testing.T) {
	named := `{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}]}`
	cases := []struct {
		name  string
		files map[string]string
		want  string
		err   string
	}{
		{"named templates: default", map[string]string{TokenizerConfigFile: named}, "<s>D</s>", ""},
		{"jinja file wins", map[string]string{TokenizerConfigFile: named, TemplateFile: "J{{ eos_token }}"}, "J</s>", ""},
		{"special_tokens_map", map[string]string{TemplateFile: "{{ bos_token }}", SpecialTokensFile: `{"bos_token": "<b>"}`}, "<b>", ""},
		{"none", map[string]string{TokenizerConfigFile: `{"eos_token": "</s>"}`}, "", "no chat template"},
		{"no default", map[string]string{TokenizerConfigFile: `{"chat_template": [{"name": "rag", "template": "R"}]}`}, "", `no "default" template among rag`},
	}
	msgs := mustMessages(t, `[{"role": "user", "content": "hi"}]`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm, err := Load(writeFiles(t, c.files))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := tm.Render(msgs, Options{})
			if err != nil || got != c.want {
				t.Errorf("Render = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// TestFrozenClock: Llama 3.2 prints today's date unless date_string is
// passed; Options.Now freezes strftime_now, giving the golden rendering.
func TestFrozenClock(t *testing.T) {
	tm, err := Load(filepath.Join(goldenDir, "Llama-3.2-3B-Instruct"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readGolden(t) {
		if r.Model != "Llama-3.2-3B-Instruct" || r.Case != "user_gen" {
			continue
		}
		got, err := tm.Render(mustMessages(t, string(r.Conversation)), Options{AddGenerationPrompt: true, Now: time.Date(2024, 7, 26, 12, 0, 0, 0, time.UTC)})
		if err != nil || got != *r.Rendered {
			t.Errorf("got %q, %v\nwant %q", got, err, *r.Rendered)
		}
		return
	}
	t.Fatal("golden row Llama-3.2-3B-Instruct/user_gen not found")
}

// chatTokenizer is stories260K's tokenizer with the turn tokens of the
// golden templates added.
func chatTokenizer(t *testing.T) tokenizer.Tokenizer {
	t.Helper()
	data, err := os.ReadFile("../../examples/stories/model/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	added := doc["added_tokens"].([]any)
	for i, s := range []string{"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<｜end▁of▁sentence｜>", "<|im_start|>"} {
		added = append(added, map[string]any{"id": 512 + i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	doc["added_tokens"] = added
	out, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEndOfTurn: the token each golden template closes an assistant turn with.
func TestEndOfTurn(t *testing.T) {
	tok := chatTokenizer(t)
	for model, want := range map[string]string{
		"Qwen2.5-Instruct": "<|im_end|>", "Qwen3-0.6B": "<|im_end|>", "Llama-3.2-3B-Instruct": "<|eot_id|>",
		"gemma-2-2b-it": "<end_of_turn>", "DeepSeek-R1-Distill-Qwen-32B": "<｜end▁of▁sentence｜>",
	} {
		tm, err := Load(filepath.Join(goldenDir, model))
		if err != nil {
			t.Fatal(err)
		}
		id := tm.EndOfTurn(tok)
		if got, _ := tok.Token(id); got != want {
			t.Errorf("%s: end of turn %d %q, want %q", model, id, got, want)
		}
	}
	// A template that ends a turn with plain text has none.
	tm, err := New("plain", TemplateFile, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := tm.EndOfTurn(tok); id != -1 {
		t.Errorf("plain template: end of turn %d, want -1", id)
	}
}

// TestJinjaSemantics pins whitespace control and tojson(indent) to what
// Python's jinja2 renders under transformers' settings (the outputs were
// produced with python3-jinja2 3.1.6). The first three cases failed with
// upstream ardanlabs/jinja v1.8.0 (third_party/jinja/PATCHES.md).
func TestJinjaSemantics(t *testing.T) {
	msgs := mustMessages(t, `[{"role": "user", "content": "hi", "z": [], "a": {}, "n": [1, {"b": null}]}]`)
	cases := []struct{ name, template, want string }{
		{"trim_blocks after an expression", "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}\n{% endif %}{% endfor %}|", "hi\n|"},
		{"indented end tag", "{% if true %}{{ messages[0].role }}\n  {% endif %}|", "user\n|"},
		{"tojson indent keeps key order", "{{ messages[0] | tojson(indent=2) }}", "{\n  \"role\": \"user\",\n  \"content\": \"hi\",\n  \"z\": [],\n  \"a\": {},\n  \"n\": [\n    1,\n    {\n      \"b\": null\n    }\n  ]\n}"},
		{"spaces after an expression stay", "{{ messages[0].role }}  {% if true %}x{% endif %}", "user  x"},
		{"explicit trim stops at an expression", "a \n{{ messages[0].role }}{%- if true %}b{% endif %}", "a \nuserb"},
		{"lstrip at template start", "  {% if true %}\n  x\n  {% endif %}\ny", "  x\ny"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm, err := New("inline", TemplateFile, c.template, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tm.Render(msgs, Options{})
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
