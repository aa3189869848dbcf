//go:build !openblas

package kernels

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// TestNoBLASWarnsOnce: without the openblas tag, the first large matmul
// prints one warning line; small ones and later calls print nothing.
func TestNoBLASWarnsOnce(t *testing.T) {
	if BLAS() || BLASName() != "pure-go" {
		t.Fatalf("BLAS() = %v, BLASName() = %q in a build without openblas", BLAS(), BLASName())
	}
	var buf bytes.Buffer
	old := warnOut
	warnOut, warnOnce = &buf, sync.Once{}
	defer func() { warnOut = old }()
	small := make([]float32, 16)
	MatmulForward(small, small, small, nil, 4, 4, 4)
	if buf.Len() != 0 {
		t.Fatalf("small matmul warned: %q", buf.String())
	}
	B, C, OC := 64, 256, 256 // B·C·OC = warnFlops
	inp, w, out := make([]float32, B*C), make([]float32, OC*C), make([]float32, B*OC)
	MatmulForward(out, inp, w, nil, B, C, OC)
	MatmulBackward(inp, w, nil, out, inp, w, B, C, OC)
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "OpenBLAS not built in") {
		t.Fatalf("warning output = %q, want one line about OpenBLAS", got)
	}
}
