//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) packTStrided's loop is Go's.

func packTRange(data, wt []float32, ldt, K, N, p0, p1 int) {
	packTRangeGo(data, wt, ldt, K, N, p0, p1)
}
