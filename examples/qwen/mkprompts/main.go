// Command mkprompts writes examples/qwen's prompts: the first N GSM8K
// questions, each padded to exactly T tokens under a tokenizer.
//
//	go run ./examples/qwen/mkprompts -tokenizer DIR_OR_JSON -data gsm8k.jsonl -n 8 -tokens 448 > prompts.jsonl
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/rljob/rljob/examples/qwen/prompts"
	"github.com/rljob/rljob/trainer/tokenizer"
)

func main() {
	tokPath := flag.String("tokenizer", "", "tokenizer.json, or a folder holding one")
	data := flag.String("data", "examples/gsm8k/sample.jsonl", "GSM8K jsonl ({question, answer})")
	n := flag.Int("n", 8, "prompts")
	total := flag.Int("tokens", 448, "tokens per prompt, BOS included")
	flag.Parse()
	tok, err := loadTokenizer(*tokPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkprompts:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	exact, err := prompts.Write(w, tok, *data, *n, *total)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkprompts:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mkprompts: %d prompts, %d of exactly %d tokens\n", *n, exact, *total)
}

func loadTokenizer(p string) (tokenizer.Tokenizer, error) {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return tokenizer.LoadDir(p)
	}
	return tokenizer.Load(p)
}
