package main

import (
	"fmt"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// selectDevice selects the device of the run's models: --device (flag)
// wins over RLJOB_DEVICE, else cpu. It runs before the run touches the
// lake; "cuda" in a binary without the CUDA kernels, or with no GPU to
// open, is a usage error (exit 2) naming what is missing.
func selectDevice(flag string, getenv func(string) string) error {
	name, src := flag, "--device"
	if name == "" {
		name, src = getenv("RLJOB_DEVICE"), "RLJOB_DEVICE"
	}
	if name == "" {
		name = trainer.DeviceCPU
	}
	if name != trainer.DeviceCPU && name != trainer.DeviceCUDA {
		return &jobs.UsageError{Msg: fmt.Sprintf("%s %q: unknown device", src, name), Hint: "--device cpu or --device cuda"}
	}
	if err := trainer.UseDevice(name); err != nil {
		return &jobs.UsageError{Msg: fmt.Sprintf("%s %s: %v", src, name, err),
			Hint: "run on the CPU with --device cpu, or build bin/rljob-cuda (make build-cuda) and run it on a machine with an NVIDIA GPU and driver"}
	}
	jobs.SetDevice(name)
	return nil
}
