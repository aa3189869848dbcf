package kernels

import "fmt"

// Rows returns a view of rows n0..n1−1 of the packed weight (the output
// columns n0..n1−1 of its product), sharing pw's memory: MatmulForwardBI
// on it gives those columns of the whole product, bit for bit. n0 must be
// a multiple of 16 (a panel's first row).
func (pw *PackedWeight) Rows(n0, n1 int) *PackedWeight {
	if n0%biPanel != 0 || n0 < 0 || n1 <= n0 || n1 > pw.N {
		panic(fmt.Sprintf("kernels: packed weight rows [%d, %d) of %d: want 0 ≤ n0 < n1 ≤ N, n0 a multiple of %d", n0, n1, pw.N, biPanel))
	}
	return &PackedWeight{N: n1 - n0, K: pw.K, ps: pw.ps, data: pw.data[n0/biPanel*pw.ps:]}
}

// Rows returns a view of rows n0..n1−1 of the bf16 packed weight, as
// PackedWeight.Rows does (n0 a multiple of 16).
func (pw *PackedWeightBF16) Rows(n0, n1 int) *PackedWeightBF16 {
	if n0%biPanel != 0 || n0 < 0 || n1 <= n0 || n1 > pw.N {
		panic(fmt.Sprintf("kernels: bf16 packed weight rows [%d, %d) of %d: want 0 ≤ n0 < n1 ≤ N, n0 a multiple of %d", n0, n1, pw.N, biPanel))
	}
	return &PackedWeightBF16{N: n1 - n0, K: pw.K, data: pw.data[n0/biPanel*pw.pairs()*biPanel:]}
}
