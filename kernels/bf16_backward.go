package kernels

import "sync"

// matmulBackwardBF16 is MatmulBackwardBF16: both products are bf16 GEMMs
// (matmulBF16, the order of bf16.go's contract) into a scratch buffer,
// then added to the gradient with one float32 addition per element.
//
//	dinp    += bf16(dout) (B, OC) · bf16(weight) (OC, C)    pairs over o
//	dweight += bf16(dout)ᵀ (OC, B) · bf16(inp) (B, C)       pairs over b
//	dbias   += Σ_b dout[b,:]                                 float32, b in order
func matmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight []float32, B, C, OC int) {
	if B <= 0 {
		return
	}
	if dbias != nil {
		biasBackward(dbias, dout, B, OC)
	}
	pw := getPackedBF16()
	defer putPackedBF16(pw)
	if dinp != nil {
		PackWeightBF16T(pw, weight, OC, C)
		tmp := getScratch(B * C)
		matmulBF16(tmp.buf, dout[:B*OC], pw, nil, B, OC, 1)
		addInto(dinp[:B*C], tmp.buf)
		putScratch(tmp)
	}
	if dweight != nil {
		PackWeightBF16T(pw, inp, B, C)
		tmp := getScratch(OC * C)
		matmulBF16(tmp.buf, dout[:B*OC], pw, nil, OC, 1, OC)
		addInto(dweight[:OC*C], tmp.buf)
		putScratch(tmp)
	}
}

// addInto does dst[i] += src[i] in parallel.
func addInto(dst, src []float32) {
	parallelFor(len(dst), 1<<14, func(lo, hi int) {
		s := src[lo:hi]
		for i := range dst[lo:hi] {
			dst[lo+i] += s[i]
		}
	})
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
