//go:build !cgo || !amd64

package kernels

// Without cgo (or off amd64) attention's probabilities are the Go loops,
// which give the C loops' bits (attn_probs_c.go).

func attnProbsBlock(s []float32, valid []bool, t0, t1, g, T int, scale float32, lse []float32, _ *attnBIScratch) {
	attnProbsBlockGo(s, valid, t0, t1, g, T, scale, lse)
}

func attnExpBlock(P []float32, valid []bool, t0, t1, T int, scale float32, lse []float32, _ []uint8) {
	attnExpBlockGo(P, valid, t0, t1, T, scale, lse)
}

func attnProbsRows(s []float32, n, rows int, scale float32) { attnProbsRowsGo(s, n, rows, scale) }
