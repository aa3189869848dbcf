package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer/chat"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// chatFlags are the flags of rljob chat render.
type chatFlags struct {
	tokenizer string
	noGen     bool
	ids       bool
	kwargs    string
}

func init() {
	var f chatFlags
	register(&command{
		name:  "chat",
		usage: "render --tokenizer DIR [--no-generation-prompt] [--ids] [--kwargs JSON] < messages.json",
		short: "render a JSON list of chat messages (stdin) with a model's chat template, as the rollout stage feeds it to the policy; --ids prints the token ids",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.tokenizer, "tokenizer", "", "model or checkpoint folder: chat_template.jinja or tokenizer_config.json's chat_template, and tokenizer.json for --ids")
			fs.BoolVar(&f.noGen, "no-generation-prompt", false, "do not append the start of an assistant turn (add_generation_prompt=False)")
			fs.BoolVar(&f.ids, "ids", false, "print the token ids of the rendering (a JSON list; no BOS is added: the template writes it where the model wants one)")
			fs.StringVar(&f.kwargs, "kwargs", "", `extra template variables as a JSON object, e.g. '{"enable_thinking": false}'`)
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if err := checkChatArgs(args, f); err != nil {
				return err
			}
			return chatRender(e, f)
		},
	})
}

// checkChatArgs checks the subcommand and flags.
func checkChatArgs(args []string, f chatFlags) error {
	switch {
	case len(args) != 1 || args[0] != "render":
		return &jobs.UsageError{Msg: "chat needs the subcommand render", Hint: `echo '[{"role": "user", "content": "Hi"}]' | rljob chat render --tokenizer DIR`}
	case strings.TrimSpace(f.tokenizer) == "":
		return &jobs.UsageError{Msg: "chat render needs --tokenizer DIR", Hint: "the folder of a model (chat_template.jinja or tokenizer_config.json) or a checkpoint"}
	case f.kwargs != "" && !json.Valid([]byte(f.kwargs)):
		return &jobs.UsageError{Msg: "--kwargs is not valid JSON", Hint: `--kwargs '{"enable_thinking": false}'`}
	}
	return nil
}

// chatRender reads messages from stdin and prints their rendering, or its
// token ids.
func chatRender(e *env, f chatFlags) error {
	var kwargs map[string]any
	if f.kwargs != "" {
		if err := json.Unmarshal([]byte(f.kwargs), &kwargs); err != nil {
			return &jobs.UsageError{Msg: "--kwargs must be a JSON object: " + err.Error(), Hint: `--kwargs '{"enable_thinking": false}'`}
		}
	}
	tmpl, err := chat.Load(f.tokenizer)
	if err != nil {
		hint := ""
		if errors.Is(err, chat.ErrNoTemplate) {
			hint = "this model has no chat template: give its prompts as plain strings, or add chat_template.jinja to the folder"
		}
		return &jobs.DataError{Msg: "chat render", File: f.tokenizer, Hint: hint, Err: err}
	}
	data, err := io.ReadAll(e.stdin)
	if err != nil {
		return fmt.Errorf("chat render: read stdin: %w", err)
	}
	msgs, err := chat.ParseMessages(data)
	if err != nil {
		return &jobs.DataError{Msg: "chat render: stdin", Hint: `write a JSON list such as [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]`, Err: err}
	}
	text, err := tmpl.Render(msgs, chat.Options{AddGenerationPrompt: !f.noGen, Kwargs: kwargs})
	if err != nil {
		return &jobs.DataError{Msg: "chat render", File: f.tokenizer, Err: err}
	}
	if !f.ids {
		_, err = io.WriteString(e.stdout, text)
		return err
	}
	tok, err := tokenizer.LoadDir(f.tokenizer)
	if err != nil {
		return &jobs.DataError{Msg: "chat render --ids", File: f.tokenizer, Err: err}
	}
	out, _ := json.Marshal(tok.Encode(text)) // []int always marshals
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}
