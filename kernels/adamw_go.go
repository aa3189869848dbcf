//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) AdamW's loop is the Go one, which gives the C
// loops' bits (adamw_c.go).

func adamwRange(p, m, v, g []float32, k *adamwConsts, zero bool) {
	adamwRangeGo(p, m, v, g, k, zero)
}
