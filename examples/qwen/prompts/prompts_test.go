package prompts

import (
	"os"
	"testing"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// TestPadExact: with Qwen's BPE every GSM8K sample question pads to exactly
// 448 tokens; a question longer than the target is an error.
func TestPadExact(t *testing.T) {
	const path = "../../../../shared/data/tokenizer/qwen3/tokenizer.json"
	if _, err := os.Stat(path); err != nil {
		t.Skip("../shared/data/tokenizer/qwen3 not present beside the repository")
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := ReadGSM8K("../../gsm8k/sample.jsonl", 20)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range qs {
		text, n, err := Pad(tok, q[0], 448)
		if err != nil || n != 448 || Tokens(tok, text) != 448 {
			t.Errorf("question %d: %d tokens, err %v", i, n, err)
		}
	}
	if _, _, err := Pad(tok, qs[0][0], 10); err == nil {
		t.Error("a question longer than the target was padded")
	}
}
