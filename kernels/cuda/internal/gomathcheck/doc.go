// Package gomathcheck compiles kernels/cuda's device ports of Go's math
// (gomath.h, included by ../../csrc/common.cuh: math.Exp and math.Log as Go computes them on amd64,
// kernels/expf.go's expf, Go's max) as host C, with each CUDA intrinsic
// mapped to the IEEE operation it performs, so that its test can compare
// them with Go's own functions bit for bit on a machine without a GPU.
// It needs cgo; without cgo it is empty.
package gomathcheck
