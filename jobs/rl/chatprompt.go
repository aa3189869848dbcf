package rl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer/chat"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// Chat prompts: a prompts table whose prompt column is a list of
// {role, content} structs (verl's and TRL's conversational format) is
// rendered with the policy's chat template (add_generation_prompt), as
// transformers' apply_chat_template does, and tokenized without adding BOS
// (the template writes it where the model wants one). A VARCHAR prompt is
// used as it is, after BOS. The rollout rows keep the rendered text
// (prompt) and its ids (prompt_tokens).

// promptExpr returns the SQL expression that reads the prompt column of
// from (the table of argument arg) as text, and whether it holds chat
// messages (then as their JSON).
func promptExpr(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, arg, from string) (string, bool, error) {
	q := "SELECT typeof(prompt) FROM " + from + " LIMIT 1"
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return "", false, jobs.ClassifySQL(err, a.Pos(arg), q)
	}
	defer rr.Release()
	var typ string
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		typ, _ = strAt(rec.Column(0), i)
		return nil
	})
	if err != nil {
		return "", false, jobs.ClassifySQL(err, a.Pos(arg), q)
	}
	if strings.HasSuffix(typ, "[]") {
		return "CAST(to_json(prompt) AS VARCHAR)", true, nil
	}
	return "CAST(prompt AS VARCHAR)", false, nil
}

// promptEncoder turns a prompt into the text and token ids the policy is
// fed, and names the tokens that end a completion.
type promptEncoder struct {
	tok    tokenizer.Tokenizer
	tmpl   *chat.Template // nil: plain prompts
	kwargs map[string]any
}

// newPromptEncoder loads the policy's chat template when the prompts are
// chat messages; chat_kwargs (a JSON object) are extra template variables.
func newPromptEncoder(sc *jobs.StageCtx, a jobs.Args, pol *policy, isChat bool) (*promptEncoder, error) {
	e := &promptEncoder{tok: pol.Tok}
	if a.Has("chat_kwargs") {
		if err := json.Unmarshal([]byte(a.String("chat_kwargs")), &e.kwargs); err != nil {
			return nil, &jobs.UsageError{Pos: a.Pos("chat_kwargs"), Msg: "rollout: chat_kwargs must be a JSON object: " + err.Error(),
				Hint: `chat_kwargs := '{"enable_thinking": false}'`}
		}
	}
	if !isChat {
		return e, nil
	}
	tmpl, err := loadTemplate(pol, a.Pos("prompts"), "rollout",
		"give plain string prompts (e.g. SELECT prompt[-1].content AS prompt)")
	if err != nil {
		return nil, err
	}
	e.tmpl = tmpl
	return e, nil
}

// loadTemplate is the policy's chat template for a stage whose prompts are
// chat messages; its error names the policy folder and how to fix it
// (plain is what the stage takes instead of messages).
func loadTemplate(pol *policy, pos jobs.Pos, stage, plain string) (*chat.Template, error) {
	tmpl, err := chat.Load(pol.TokDir)
	if err == nil {
		return tmpl, nil
	}
	hint := "check the template in the policy folder with: rljob chat render --tokenizer " + pol.Dir
	if errors.Is(err, chat.ErrNoTemplate) {
		hint = "the prompts are chat messages but the policy has no chat template: " + plain +
			", or start the run from a model folder with chat_template.jinja or a chat_template in tokenizer_config.json"
	}
	return nil, &jobs.DataError{Pos: pos, Msg: stage + ": chat prompts", File: pol.Dir, Column: "prompt", Hint: hint, Err: err}
}

// encode returns the text the policy sees for prompt p and its token ids.
func (e *promptEncoder) encode(a jobs.Args, id, p string) (string, []int32, error) {
	if e.tmpl == nil {
		return p, encodePrompt(e.tok.BOS(), e.tok.Encode(p)), nil
	}
	msgs, err := chat.ParseMessages([]byte(p))
	if err == nil {
		p, err = e.tmpl.Render(msgs, chat.Options{AddGenerationPrompt: true, Kwargs: e.kwargs})
	}
	if err != nil {
		return "", nil, &jobs.DataError{Pos: a.Pos("prompts"), Msg: fmt.Sprintf("rollout: prompt %q", id), Column: "prompt", Err: err,
			Hint: "see what the template makes of it with: rljob chat render --tokenizer " + e.tmpl.Dir + " < messages.json"}
	}
	return p, encodePrompt(-1, e.tok.Encode(p)), nil
}

// stopTokens are EOS and, for chat prompts, the template's end-of-turn
// token (<|im_end|>, <|eot_id|>, ...).
func (e *promptEncoder) stopTokens() []int {
	var stops []int
	if eos := e.tok.EOS(); eos >= 0 {
		stops = append(stops, eos)
	}
	if e.tmpl != nil {
		if eot := e.tmpl.EndOfTurn(e.tok); eot >= 0 && eot != e.tok.EOS() {
			stops = append(stops, eot)
		}
	}
	return stops
}
