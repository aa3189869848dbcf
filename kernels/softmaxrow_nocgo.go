//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) a softmax row is the Go loop, which gives the
// C loops' bits (softmaxrow_c.go).

func softmaxRow(row []float32, inv float32, er []float32, w []float64, wantSz bool) (mx float32, s, sz float64) {
	return softmaxRowGo(row, inv, er, w, wantSz)
}

func expRow(row []float32, inv, mx float32, er []float32) { expRowGo(row, inv, mx, er) }
