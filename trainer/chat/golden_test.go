package chat

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenDir holds five models' chat templates and golden.jsonl, copied from
// ../shared/data/chat_templates (see testdata/chat_templates/README.md):
// 60 renderings by Python's jinja2 exactly as transformers'
// apply_chat_template does.
const goldenDir = "../../testdata/chat_templates"

type goldenRow struct {
	Model        string          `json:"model"`
	TemplatePath string          `json:"template_path"`
	Case         string          `json:"case"`
	Conversation json.RawMessage `json:"conversation"`
	Tools        json.RawMessage `json:"tools"`
	AddGen       bool            `json:"add_generation_prompt"`
	Kwargs       map[string]any  `json:"kwargs"`
	Rendered     *string         `json:"rendered"`
	Error        *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func readGolden(t *testing.T) []goldenRow {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, "golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []goldenRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r goldenRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 60 {
		t.Fatalf("golden.jsonl has %d rows, want 60", len(rows))
	}
	return rows
}

// TestGolden renders every golden conversation and requires the same bytes,
// or, where the template raises, an *Error of kind raise_exception with
// the template's words, the model folder and the failing message.
func TestGolden(t *testing.T) {
	tmpls := map[string]*Template{}
	for _, r := range readGolden(t) {
		t.Run(r.Model+"/"+r.Case, func(t *testing.T) {
			tm := tmpls[r.TemplatePath]
			if tm == nil {
				var err error
				if tm, err = Load(filepath.Join(goldenDir, r.TemplatePath)); err != nil {
					t.Fatal(err)
				}
				tmpls[r.TemplatePath] = tm
			}
			msgs, err := ParseMessages(r.Conversation)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tm.Render(msgs, Options{AddGenerationPrompt: r.AddGen, Tools: r.Tools, Kwargs: r.Kwargs})
			if r.Error != nil {
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindRaise || e.Msg != r.Error.Message || e.Index < 0 {
					t.Fatalf("error %v, want the template's raise_exception %q at a message", err, r.Error.Message)
				}
				if !strings.Contains(err.Error(), r.TemplatePath) || !strings.Contains(err.Error(), e.Role) {
					t.Errorf("error %q does not name the model folder and role", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != *r.Rendered {
				t.Errorf("rendering differs\n got %q\nwant %q", got, *r.Rendered)
			}
		})
	}
}
