package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// rljobStdin runs Main in-process with stdin and returns its exit code,
// stdout and stderr.
func rljobStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// chatModelDir is stories260K's tokenizer with a chat template beside it.
func chatModelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join("../../examples/stories/model", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, name, string(data))
	}
	writeFile(t, dir, "chat_template.jinja", "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}")
	return dir
}

func TestChatRender(t *testing.T) {
	const qwen = "../../testdata/chat_templates/Qwen2.5-Instruct"
	const gemma = "../../testdata/chat_templates/gemma-2-2b-it"
	sysUser := `[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is the capital of France?"}]`
	model := chatModelDir(t)
	tok, err := tokenizer.LoadDir(model)
	if err != nil {
		t.Fatal(err)
	}
	// BOS (the template writes <s>), then the rest as one normalized segment.
	idsJSON, _ := json.Marshal(append([]int{1}, tok.Encode("user: Once upon a time\nassistant:")...))
	ids := string(idsJSON) + "\n"
	cases := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"qwen", sysUser, []string{"--tokenizer", qwen}, 0,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", nil},
		{"no generation prompt", sysUser, []string{"--tokenizer", qwen, "--no-generation-prompt"}, 0,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n", nil},
		{"bos from the template", `[{"role": "user", "content": "Once upon a time"}]`, []string{"--tokenizer", model}, 0, "<s>user: Once upon a time\nassistant:", nil},
		{"ids", `[{"role": "user", "content": "Once upon a time"}]`, []string{"--tokenizer", model, "--ids"}, 0, ids, nil},
		{"template raises", sysUser, []string{"--tokenizer", gemma}, 3, "",
			[]string{"gemma-2-2b-it", "message 0 (role \"system\")", "System role not supported"}},
		{"bad messages", `[{"content": "x"}]`, []string{"--tokenizer", qwen}, 3, "", []string{`message 0: no string "role"`}},
		{"no template", sysUser, []string{"--tokenizer", "../../examples/stories/model"}, 3, "", []string{"no chat template"}},
		{"no tokenizer flag", sysUser, nil, 2, "", []string{"needs --tokenizer"}},
		{"bad kwargs", sysUser, []string{"--tokenizer", qwen, "--kwargs", "{"}, 2, "", []string{"--kwargs"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := rljobStdin(t, c.stdin, append([]string{"chat", "render"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, c.code, errs)
			}
			if c.code == 0 && out != c.stdout {
				t.Errorf("stdout %q, want %q", out, c.stdout)
			}
			for _, w := range c.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
		})
	}
}
