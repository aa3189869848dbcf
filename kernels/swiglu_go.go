//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) the SwiGLU element loops are the Go ones, which
// give the C loops' bits (swiglu_c.go).

func swigluFwdRange(out, gate, up []float32) { swigluFwdRangeGo(out, gate, up) }

func swigluBwdRange(dgate, dup, dout, gate, up []float32) {
	swigluBwdRangeGo(dgate, dup, dout, gate, up)
}

func swigluLevel(want int) int { return 0 }
