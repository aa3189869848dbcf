package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

func init() {
	o := &exportFlags{}
	register(&command{
		name:  "export",
		usage: "CHECKPOINT (--merged DIR | --peft DIR [--base NAME])",
		short: "write a checkpoint as a plain HF model (LoRA adapters merged into the weights) or its adapters as a PEFT adapter folder",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.merged, "merged", "", "new folder for an HF checkpoint: config.json, model.safetensors (adapters merged, W + alpha/r·B·A) and the tokenizer")
			fs.StringVar(&o.peft, "peft", "", "new folder for a PEFT adapter: adapter_config.json and adapter_model.safetensors (PEFT's tensor names; LoRA checkpoints only)")
			fs.StringVar(&o.base, "base", "", "with --peft: base_model_name_or_path to write (e.g. Qwen/Qwen2.5-0.5B-Instruct); default the base folder the checkpoint names")
		},
		run: o.run,
	})
}

type exportFlags struct{ merged, peft, base string }

func (o *exportFlags) run(ctx context.Context, e *env, args []string) error {
	switch {
	case len(args) != 1:
		return &jobs.UsageError{Msg: fmt.Sprintf("export takes one checkpoint folder, got %d arguments", len(args)),
			Hint: "rljob export LAKE/checkpoints/run=R/step=K/... --merged OUT"}
	case (o.merged == "") == (o.peft == ""):
		return &jobs.UsageError{Msg: "export needs exactly one of --merged DIR and --peft DIR"}
	case o.base != "" && o.peft == "":
		return &jobs.UsageError{Msg: "--base goes with --peft"}
	}
	ck, err := trainer.LoadCheckpoint(args[0])
	if err != nil {
		return &jobs.DataError{Msg: "export: load " + args[0], File: args[0], Err: err}
	}
	if o.merged != "" {
		if err := trainer.ExportMerged(ck, o.merged); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(e.stdout, "wrote %s (merged: %v)\n", o.merged, ck.Model.LoRA != nil)
		return nil
	}
	if ck.Model.LoRA == nil {
		return &jobs.UsageError{Msg: fmt.Sprintf("export --peft: %s has no LoRA adapters (a full fine-tune exports with --merged)", args[0])}
	}
	if err := trainer.ExportAdapter(ck, o.peft, o.base); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", o.peft)
	return nil
}
