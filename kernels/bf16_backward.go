package kernels

import "sync"

// matmulBackwardBF16 is MatmulBackwardBF16: both products are bf16 GEMMs
// (matmulBF16, the order of bf16.go's contract) that continue each
// gradient element's own value:
//
//	dinp    += bf16(dout) (B, OC) · bf16(weight) (OC, C)    pairs over o
//	dweight += bf16(dout)ᵀ (OC, B) · bf16(inp) (B, C)       pairs over b
//	dbias   += Σ_b dout[b,:]                                 float32, b in order
//
// wT, when not nil, is weight already packed by PackWeightBF16T (a
// caller that multiplies by the same weight several times packs it once).
func matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, wT *PackedWeightBF16, B, C, OC int) {
	if B <= 0 {
		return
	}
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
	}
	pw := getPackedBF16()
	defer putPackedBF16(pw)
	if dinp != nil {
		if wT == nil {
			wT = PackWeightBF16T(pw, weight, OC, C)
		}
		matmulBF16(dinp[:B*C], dout[:B*OC], wT, nil, true, B, OC, 1)
	}
	if dweight != nil {
		PackWeightBF16T(pw, inp, B, C)
		matmulBF16(dweight[:OC*C], dout[:B*OC], pw, nil, true, OC, 1, OC)
	}
}

var packedBF16Pool sync.Pool

func getPackedBF16() *PackedWeightBF16 {
	if pw, ok := packedBF16Pool.Get().(*PackedWeightBF16); ok {
		return pw
	}
	return &PackedWeightBF16{}
}

func putPackedBF16(pw *PackedWeightBF16) { packedBF16Pool.Put(pw) }

// matmulForwardBF16W is MatmulForwardBF16 on an unpacked weight (OC, C),
// packed into a pooled scratch first.
func matmulForwardBF16W(out, inp, weight, bias []float32, B, C, OC int) {
	if B <= 0 {
		return
	}
	pw := getPackedBF16()
	PackWeightBF16(pw, weight, OC, C)
	MatmulForwardBF16(out, inp, pw, bias, B)
	putPackedBF16(pw)
}
