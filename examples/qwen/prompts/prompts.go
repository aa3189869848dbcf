// Package prompts builds the GSM8K prompts of examples/qwen, each padded to
// a fixed number of tokens so that a benchmark step has a known shape.
package prompts

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// Row is one prompt of the job: prompt_id, prompt and the reference answer.
type Row struct {
	PromptID string `json:"prompt_id"`
	Prompt   string `json:"prompt"`
	Answer   string `json:"answer"`
}

// filler is the unit a prompt is padded with, before the question.
const filler = " ."

// instruction ends every prompt (the gsm8k verifier reads "#### N").
const instruction = "\nSolve the problem. End with a line '#### <number>'.\n"

// Tokens is the number of tokens the rollout stage gives a prompt text:
// [BOS] + Encode(text).
func Tokens(tok tokenizer.Tokenizer, text string) int {
	n := len(tok.Encode(text))
	if tok.BOS() >= 0 {
		n++
	}
	return n
}

// Pad returns question with filler units before it (and the instruction
// after it) such that Tokens is total, or the longest text below total
// when no number of units lands on it exactly; n is its token count. A
// question longer than total on its own is an error.
func Pad(tok tokenizer.Tokenizer, question string, total int) (text string, n int, err error) {
	build := func(k int) string { return strings.Repeat(filler, k) + "\n" + question + instruction }
	if n0 := Tokens(tok, build(0)); n0 > total {
		return "", n0, fmt.Errorf("prompts: question has %d tokens, more than %d", n0, total)
	}
	best, bestN := build(0), Tokens(tok, build(0))
	lo, hi := 0, total // binary search on the number of units: Tokens grows with k
	for lo <= hi {
		k := (lo + hi) / 2
		t := build(k)
		c := Tokens(tok, t)
		switch {
		case c == total:
			return t, c, nil
		case c < total:
			if c > bestN {
				best, bestN = t, c
			}
			lo = k + 1
		default:
			hi = k - 1
		}
	}
	return best, bestN, nil
}

var answerRE = regexp.MustCompile(`####\s*([^\n]+)\s*$`)

// ReadGSM8K reads the first n rows of a GSM8K jsonl file ({question, answer}).
func ReadGSM8K(path string, n int) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() && len(out) < n {
		var r struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, len(out)+1, err)
		}
		m := answerRE.FindStringSubmatch(r.Answer)
		if m == nil {
			return nil, fmt.Errorf("%s line %d: answer has no '#### N'", path, len(out)+1)
		}
		out = append(out, [2]string{r.Question, strings.ReplaceAll(strings.TrimSpace(m[1]), ",", "")})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) < n {
		return nil, fmt.Errorf("%s has %d rows, %d wanted", path, len(out), n)
	}
	return out, nil
}

// Write pads n GSM8K questions of data to total tokens and writes them to
// w as JSON lines (Row); exact counts how many landed exactly on total.
func Write(w io.Writer, tok tokenizer.Tokenizer, data string, n, total int) (exact int, err error) {
	qs, err := ReadGSM8K(data, n)
	if err != nil {
		return 0, err
	}
	enc := json.NewEncoder(w)
	for i, q := range qs {
		text, c, err := Pad(tok, q[0], total)
		if err != nil {
			return exact, fmt.Errorf("question %d: %w", i, err)
		}
		if c == total {
			exact++
		}
		if err := enc.Encode(Row{PromptID: fmt.Sprintf("gsm8k-%04d", i), Prompt: text, Answer: q[1]}); err != nil {
			return exact, err
		}
	}
	return exact, nil
}
