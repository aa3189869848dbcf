package main

import (
	"fmt"

	"github.com/rljob/rljob/kernels/cuda"
)

// cudaLine is `rljob version`'s CUDA line in a binary built with
// `make build-cuda` (bin/rljob-cuda): the GPU the kernels of kernels/cuda
// open, or why none opens. A build without CUDA prints no such line.
func cudaLine() string {
	if !cuda.Built {
		return ""
	}
	d, err := cuda.Open(0)
	if err != nil {
		return fmt.Sprintf("cuda: built with CUDA kernels; no usable GPU: %v", err)
	}
	defer d.Close()
	return fmt.Sprintf("cuda: %s, %.1f GiB (device 0)", d.Name, float64(d.Total)/(1<<30))
}
