//go:build !cuda || !cgo

package trainer

import "errors"

// errNoCUDABuild is UseDevice("cuda")'s error in a binary built without
// the cuda tag (or without cgo).
var errNoCUDABuild = errors.New("built without CUDA: make build-cuda builds bin/rljob-cuda, which has the GPU kernels")

// openCUDABackend fails: this binary has no CUDA kernels.
func openCUDABackend() (Backend, error) { return nil, errNoCUDABuild }
