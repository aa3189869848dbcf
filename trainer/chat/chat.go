// Package chat renders conversations ([{role, content}, ...], the verl/TRL
// prompt convention) with a model's own chat template, as Hugging Face
// transformers' apply_chat_template does, and finds the tokens that end an
// assistant turn (the stop tokens of a rollout).
//
// The template is Jinja, evaluated by github.com/ardanlabs/jinja v1.8.0,
// vendored with two fixes in third_party/jinja (docs/chat.md says why that
// library, third_party/jinja/PATCHES.md what was fixed). Like transformers, rendering uses
// trim_blocks and lstrip_blocks, a tojson that keeps non-ASCII and the
// key order of the input, raise_exception and strftime_now, and passes the
// tokenizer's special tokens (bos_token, eos_token, ...) as variables.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rljob/rljob/third_party/jinja"
)

// File names read by Load.
const (
	TemplateFile        = "chat_template.jinja"     // newer HF repositories keep the template here
	TokenizerConfigFile = "tokenizer_config.json"   // chat_template and the special tokens
	SpecialTokensFile   = "special_tokens_map.json" // special tokens, when tokenizer_config.json lacks them
)

// ErrNoTemplate is returned (wrapped) by Load for a folder without a chat
// template.
var ErrNoTemplate = errors.New("no chat template")

// specialTokenNames are the tokenizer attributes transformers passes to the
// template (those that are set), in its order.
var specialTokenNames = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// Template is a compiled chat template with the special-token variables of
// its model. It is safe for concurrent use.
type Template struct {
	Dir    string // the model folder, named in errors
	File   string // the file the template came from (base name)
	Source string // the template text
	// Special holds the special-token variables: bos_token, eos_token, ...
	// (strings) and additional_special_tokens ([]string).
	Special map[string]any
	tmpl    *jinja.Template
}

// Load reads dir's chat template: dir/chat_template.jinja when it exists
// (newer HF repositories), else the chat_template of
// dir/tokenizer_config.json (a string, or a list of {"name", "template"}
// of which "default" is taken). The special-token variables come from
// tokenizer_config.json, else from special_tokens_map.json. A folder with
// neither template returns an error wrapping ErrNoTemplate; a template that
// does not compile, an *Error of kind KindSyntax.
func Load(dir string) (*Template, error) {
	cfg, err := readJSONObject(filepath.Join(dir, TokenizerConfigFile))
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	special := specialTokens(cfg)
	if len(special) == 0 {
		m, err := readJSONObject(filepath.Join(dir, SpecialTokensFile))
		if err != nil {
			return nil, fmt.Errorf("chat: %w", err)
		}
		special = specialTokens(m)
	}
	file, src := TemplateFile, ""
	if b, err := os.ReadFile(filepath.Join(dir, TemplateFile)); err == nil {
		src = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("chat: %w", err)
	} else if raw, ok := cfg["chat_template"]; ok && string(raw) != "null" {
		file = TokenizerConfigFile
		if src, err = pickTemplate(raw); err != nil {
			return nil, fmt.Errorf("chat: %s: chat_template: %w", filepath.Join(dir, file), err)
		}
	} else {
		return nil, fmt.Errorf("chat: %s: %w (neither %s nor a chat_template in %s)", dir, ErrNoTemplate, TemplateFile, TokenizerConfigFile)
	}
	return New(dir, file, src, special)
}

// New compiles src, the chat template of the model in dir (read from file),
// with the given special-token variables.
func New(dir, file, src string, special map[string]any) (*Template, error) {
	tmpl, err := jinja.Compile(src)
	if err != nil {
		return nil, &Error{Dir: dir, File: file, Index: -1, Kind: KindSyntax, Msg: err.Error()}
	}
	if special == nil {
		special = map[string]any{}
	}
	return &Template{Dir: dir, File: file, Source: src, Special: special, tmpl: tmpl}, nil
}

// readJSONObject reads a JSON object file; a missing file is an empty object.
func readJSONObject(path string) (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// pickTemplate reads a chat_template value: a string, or a list of named
// templates of which "default" is used (tools are not rendered by rljob's
// stages, so "tool_use" is not picked).
func pickTemplate(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("want a string or a list of {\"name\", \"template\"}: %w", err)
	}
	var names []string
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
		names = append(names, n.Name)
	}
	return "", fmt.Errorf("no \"default\" template among %s", strings.Join(names, ", "))
}

// specialTokens returns the special-token variables of a tokenizer config:
// each of specialTokenNames that is set (a string, or an AddedToken object's
// "content"), and additional_special_tokens when not empty.
func specialTokens(cfg map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for _, name := range specialTokenNames {
		if s := tokenString(cfg[name]); s != "" {
			out[name] = s
		}
	}
	var list []json.RawMessage
	if json.Unmarshal(cfg["additional_special_tokens"], &list) == nil && len(list) > 0 {
		var names []string
		for _, r := range list {
			if s := tokenString(r); s != "" {
				names = append(names, s)
			}
		}
		out["additional_special_tokens"] = names
	}
	return out
}

// tokenString reads a token entry: "text" or {"content": "text", ...}.
func tokenString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content
	}
	return ""
}
