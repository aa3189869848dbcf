package rl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer/chat"
)

// SFT on chat messages (TRL's conversational prompt-completion format):
// the prompt is a list of {role, content} messages and the completion is
// the assistant's reply, a string or a list of assistant messages. The
// sequence is the policy's chat template rendering of prompt + reply; the
// prompt part is the rendering of the prompt with add_generation_prompt,
// which must be a prefix of it, and only what follows it is trained on:
// the assistant's content and the template's end of its turn (TRL's
// assistant-only / completion-only loss). Nothing is added: the template
// writes BOS and the end-of-turn token where the model wants them.

// chatSFTTexts returns the text of the prompt (with the generation
// prompt) and the text the completion adds after it, rendered with e's
// template; promptJSON is the prompt's messages as JSON, completion the
// reply (a string, or a JSON list of messages when completionIsChat).
func (e *promptEncoder) chatSFTTexts(promptJSON, completion string, completionIsChat bool) (prompt, reply string, err error) {
	var msgs []json.RawMessage
	if err := json.Unmarshal([]byte(promptJSON), &msgs); err != nil {
		return "", "", fmt.Errorf("prompt: messages are not a JSON list: %w", err)
	}
	pm, err := chat.ParseMessages([]byte(promptJSON))
	if err != nil {
		return "", "", err
	}
	if prompt, err = e.tmpl.Render(pm, chat.Options{AddGenerationPrompt: true, Kwargs: e.kwargs}); err != nil {
		return "", "", err
	}
	var extra []json.RawMessage
	if completionIsChat {
		if err := json.Unmarshal([]byte(completion), &extra); err != nil {
			return "", "", fmt.Errorf("completion: messages are not a JSON list: %w", err)
		}
	} else {
		b, err := json.Marshal(struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}{"assistant", completion})
		if err != nil {
			return "", "", err
		}
		extra = []json.RawMessage{b}
	}
	all, err := json.Marshal(append(msgs, extra...))
	if err != nil {
		return "", "", err
	}
	am, err := chat.ParseMessages(all)
	if err != nil {
		return "", "", err
	}
	for i, r := range am.Roles()[pm.Len():] {
		if r != "assistant" {
			return "", "", fmt.Errorf("completion: message %d has role %q; a completion is the assistant's reply", i, r)
		}
	}
	full, err := e.tmpl.Render(am, chat.Options{Kwargs: e.kwargs})
	if err != nil {
		return "", "", err
	}
	if !strings.HasPrefix(full, prompt) {
		return "", "", fmt.Errorf("the template's rendering of the conversation does not start with its rendering of the prompt with add_generation_prompt "+
			"(…%q), so the assistant's tokens cannot be told apart (a template that rewrites earlier turns, e.g. one that drops reasoning)", clip(prompt, 60))
	}
	return prompt, full[len(prompt):], nil
}

// clip is s cut to its last n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// sftColumns returns the SQL expressions that read data's prompt and
// completion as text (a list of messages as its JSON) and whether the
// prompts are chat messages. Chat completions need chat prompts.
func sftColumns(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, from string) (pexpr, cexpr string, isChat, cChat bool, err error) {
	if pexpr, isChat, err = promptExpr(ctx, sc, a, "data", from); err != nil {
		return
	}
	q := "SELECT typeof(completion) FROM " + from + " LIMIT 1"
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return "", "", false, false, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	var typ string
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		typ, _ = strAt(rec.Column(0), i)
		return nil
	})
	rr.Release()
	if err != nil {
		return "", "", false, false, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	cexpr = "CAST(completion AS VARCHAR)"
	if cChat = strings.HasSuffix(typ, "[]"); cChat {
		cexpr = "CAST(to_json(completion) AS VARCHAR)"
		if !isChat {
			return "", "", false, false, &jobs.DataError{Pos: a.Pos("data"), Column: "completion",
				Msg: "sft: the completion is a list of chat messages but the prompt is a string", Hint: "give the prompt as a list of messages too, or the completion as a string"}
		}
	}
	return pexpr, cexpr, isChat, cChat, nil
}

// sftEncoder is the prompt encoder of sft: the policy's chat template when
// the prompts are chat messages.
func sftEncoder(a jobs.Args, pol *policy, isChat bool) (*promptEncoder, error) {
	e := &promptEncoder{tok: pol.Tok}
	if !isChat {
		return e, nil
	}
	tmpl, err := loadTemplate(pol, a.Pos("data"), "sft", "give string prompts and completions")
	if err != nil {
		return nil, err
	}
	e.tmpl = tmpl
	return e, nil
}

// sftTokens are one example's token ids and the index of its first
// target: for a chat example the template's rendering (chatSFTTexts), else
// BOS + prompt + completion + EOS; the texts are returned for the
// unknown-character check.
func (e *promptEncoder) sftTokens(p, c string, cChat bool, eos int) (toks []int32, start int, text string, err error) {
	if e.tmpl == nil {
		toks = encodePrompt(e.tok.BOS(), e.tok.Encode(p))
		start = len(toks)
		for _, id := range e.tok.Encode(c) {
			toks = append(toks, int32(id))
		}
		return append(toks, int32(eos)), start, p + c, nil
	}
	pt, rt, err := e.chatSFTTexts(p, c, cChat)
	if err != nil {
		return nil, 0, "", err
	}
	toks = encodePrompt(-1, e.tok.Encode(pt))
	start = len(toks)
	for _, id := range e.tok.Encode(rt) {
		toks = append(toks, int32(id))
	}
	return toks, start, pt + rt, nil
}
