package rl

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// storiesTemplate is a small chat template over stories260K's vocabulary:
// BOS, a system paragraph, Q:/A: turns, EOS at the end of an answer.
const storiesTemplate = `{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}

{% elif m.role == 'user' %}Q: {{ m.content }}
{% elif m.role == 'assistant' %}A: {{ m.content }}{{ eos_token }}
{% else %}{{ raise_exception('Unsupported role: ' + m.role) }}{% endif %}{% endfor %}{% if add_generation_prompt %}A:{% endif %}`

// chatModel copies examples/stories/model into a folder, with template as
// its chat_template.jinja when not empty.
func chatModel(t *testing.T, template string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join("../../examples/stories/model", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if template != "" {
		if err := os.WriteFile(filepath.Join(dir, "chat_template.jinja"), []byte(template), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const chatJob = `
CALL init_policy(policy := '{{model}}');
CREATE OR REPLACE TABLE batch AS
SELECT 'p1' AS prompt_id, [{'role': 'system', 'content': 'Tell a story.'}, {'role': 'user', 'content': {{user}}}] AS prompt, 'x' AS answer;
CALL rollout(prompts := 'batch', n := 2, max_new_tokens := 8, temperature := 0);
`

// TestChatPromptRollout: a list-of-messages prompt is rendered with the
// policy's template (kept through init_policy's checkpoint), the system
// message included; the rows keep the rendered text and its ids, with the
// template's BOS and no second one.
func TestChatPromptRollout(t *testing.T) {
	lake, _ := testLake(t)
	model := chatModel(t, storiesTemplate)
	job := strings.NewReplacer("{{model}}", model, "{{user}}", "'Once upon a time'").Replace(chatJob)
	mustRun(t, lake, "", job, runOpt{})
	rows := query(t, lake, "SELECT prompt, CAST(prompt_tokens AS VARCHAR) FROM rollouts ORDER BY sample_idx")
	want := "<s>Tell a story.\n\nQ: Once upon a time\nA:"
	tok, err := tokenizer.LoadDir(model)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, id := range tok.Encode(want) {
		ids = append(ids, strconv.Itoa(id))
	}
	if len(rows) != 2 {
		t.Fatalf("%d rollouts, want 2", len(rows))
	}
	for _, r := range rows {
		if r != want+"|["+strings.Join(ids, ", ")+"]" {
			t.Errorf("row %q\nwant %q with ids %v", r, want, ids)
		}
	}
	if !strings.HasPrefix(strings.Join(ids, ","), "1,") || strings.HasPrefix(strings.Join(ids, ","), "1,1,") {
		t.Errorf("prompt ids %v: want exactly one BOS first", ids)
	}
}

// TestChatPromptErrors: a template failure names the prompt, the model
// folder, the message and the template's words; nothing is committed.
func TestChatPromptErrors(t *testing.T) {
	cases := []struct {
		name, template, user string
		want                 []string
	}{
		{"template raises", storiesTemplate, "'hi'}, {'role': 'tool', 'content': 'x'", []string{`prompt "p1"`, "message 2", `role "tool"`, "Unsupported role: tool"}},
		{"no template", "", "'hi'", []string{"no chat template", "plain string prompts"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lake, _ := testLake(t)
			model := chatModel(t, c.template)
			job := strings.NewReplacer("{{model}}", model, "{{user}}", c.user).Replace(chatJob)
			_, err := runJob(t, lake, "", job, runOpt{})
			if err == nil {
				t.Fatal("the rollout ran")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(lake, "rollouts")); err == nil {
				t.Error("rollouts were committed")
			}
		})
	}
}

// TestSFTRefusesChatPrompts: sft takes string prompts; a list of messages
// is refused, naming the column, instead of training on its SQL text.
func TestSFTRefusesChatPrompts(t *testing.T) {
	lake, _ := testLake(t)
	job := strings.ReplaceAll(`CALL init_policy(policy := '{{model}}');
CREATE OR REPLACE TABLE d AS SELECT [{'role': 'user', 'content': 'hi'}] AS prompt, 'there' AS completion;
CALL sft(data := 'd');`, "{{model}}", chatModel(t, storiesTemplate))
	_, err := runJob(t, lake, "", job, runOpt{})
	if err == nil || !strings.Contains(err.Error(), "sft: prompt is a list of chat messages") {
		t.Fatalf("error %v, want the chat-prompt refusal", err)
	}
}
