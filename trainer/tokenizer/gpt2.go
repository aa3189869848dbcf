package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// LoadGPT2 reads OpenAI's GPT-2 tokenizer files: encoder.json (byte-level
// token → id) and vocab.bpe (a "#version" line, then one "a b" merge per
// line, in rank order). The result encodes exactly as OpenAI's encoder.py:
// GPT-2 pattern, no normalizer, and no added tokens, so "<|endoftext|>" in
// text is encoded as ordinary text; EOS (and no BOS) is the vocabulary's
// "<|endoftext|>" (id 50256). Save writes it as HF's GPT-2 tokenizer.json
// without added_tokens, which encodes the same.
func LoadGPT2(encoderJSON, vocabBPE string) (*BPE, error) {
	data, err := os.ReadFile(encoderJSON)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", encoderJSON, err)
	}
	data, err = os.ReadFile(vocabBPE)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var merges [][2]string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || (n == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("tokenizer: %s:%d: merge %q is not \"a b\"", vocabBPE, n+1, line)
		}
		merges = append(merges, [2]string{f[0], f[1]})
	}
	t, err := newBPE(vocab, merges, nil, patGPT2, nil)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s, %s: %w", encoderJSON, vocabBPE, err)
	}
	return t, nil
}
