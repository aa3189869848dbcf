package rl

import (
	"os"
	"path/filepath"
	"slices"
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

// TestSFTChatMessages: sft renders a list-of-messages prompt and the
// assistant's reply (a string, or a list of assistant messages) with the
// policy's chat template (Qwen2.5-Instruct's, from testdata) and trains on
// the reply's tokens only: the light checkpoint's stored example is the
// hand-rendered prompt's ids, then those of the reply's content and the
// template's end of turn, with the first target at the reply. A non-assistant reply
// is refused.
func TestSFTChatMessages(t *testing.T) {
	tmpl, err := os.ReadFile("../../testdata/chat_templates/Qwen2.5-Instruct/chat_template.jinja")
	if err != nil {
		t.Fatal(err)
	}
	model := chatModel(t, string(tmpl))
	tok, err := tokenizer.LoadDir(model)
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n"
	const reply = "there was a cat<|im_end|>\n"
	// The prompt and the reply are tokenized apart, as a rollout's prompt
	// and its sampled completion are.
	var want []int32
	for _, id := range append(tok.Encode(prompt), tok.Encode(reply)...) {
		want = append(want, int32(id))
	}
	start := len(tok.Encode(prompt))
	msgs := "[{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Once upon a time'}]"
	for _, c := range []struct{ name, completion, err string }{
		{"string reply", "'there was a cat'", ""},
		{"assistant message", "[{'role': 'assistant', 'content': 'there was a cat'}]", ""},
		{"user message", "[{'role': 'user', 'content': 'there was a cat'}]", `role "user"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			lake, _ := testLake(t)
			job := strings.NewReplacer("{{model}}", model, "{{msgs}}", msgs, "{{c}}", c.completion).Replace(`CALL init_policy(policy := '{{model}}');
CREATE OR REPLACE TABLE d AS SELECT {{msgs}} AS prompt, {{c}} AS completion;
CALL sft(data := 'd');`)
			_, err := runJob(t, lake, "", job, runOpt{})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "sft: row 0") {
					t.Fatalf("error %v, want one naming row 0 and %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rows, err := readTrainInputs(ckDir(t, lake, "r", 0))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || !slices.Equal(rows[0].tokens, want) || rows[0].start != start {
				t.Fatalf("trained example %v (first target %d), want %v (first target %d)", rows[0].tokens, rows[0].start, want, start)
			}
		})
	}
}
