package kernels

// The loss head's backward by slices of the vocabulary. Row by row (head.go)
// the backward turns each chunk of rows' e into dlogits and multiplies: the
// weight gradient dW (V, C) += dlogitsᵀ·inp is then a product with K = the
// chunk's rows, which reads and writes all of dW (4·V·C bytes, 545 MB for a
// 152k vocabulary) once per chunk. By slices, each slice of W ids takes
// every row at once: its logits (N, W) are recomputed from the packed
// lm_head, e from the forward's per-row max (HeadForwardMax), and dW's
// rows v0..v0+W−1 get their whole sum over the N rows in one product.
// Every element has the bits of the row form: e and dlogits are the same
// operations (expRow, logpGrad, ceGrad), and each GEMM chain continues in
// order across slices or chunks.

// headSliceCols is how many of the slice's W ids starting at v0 are below
// VL (the rest, ids past the tokenizer's vocabulary, have p = 0).
func headSliceCols(W, v0, VL int) int { return min(W, max(0, VL-v0)) }

// headSliceE writes e = exp(z − mx) of one row's slice into d: its first
// nv ids from the logits x, +0 past them (HeadForward's e).
func headSliceE(d, x []float32, nv int, inv, mx float32) {
	expRow(x[:nv], inv, mx, d[:nv])
	clear(d[nv:])
}

// inSlice returns t − v0 when the target t is one of the slice's W ids,
// else −1.
func inSlice(t int32, v0, W int) int {
	if int(t) >= v0 && int(t) < v0+W {
		return int(t) - v0
	}
	return -1
}

// headSliceLogp: see HeadSliceLogp (headBwdLogp's rows, restricted to
// ids v0..v0+W−1).
func headSliceLogp(d, logits, mx, r, dlogp, dent, lse, ent []float32, targets []int32, N, W, v0, VL int, temp float32) {
	inv := 1 / temp
	nv := headSliceCols(W, v0, VL)
	parallelFor(N, headGrain(W), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			dr, x := d[n*W:(n+1)*W], logits[n*W:n*W+nv]
			t := targets[n]
			g, gh, l, h := logpRowWeights(n, t, dlogp, dent, lse, ent, inv)
			if g == 0 && gh == 0 {
				clear(dr)
				continue
			}
			headSliceE(dr, x, nv, inv, mx[n])
			logpGrad(dr, x, r[n], g, gh, inv, l, h)
			if j := inSlice(t, v0, W); t >= 0 && j >= 0 {
				dr[j] += g
			}
		}
	})
}

// headSliceCE: see HeadSliceCE (headBwdCE's rows, restricted to ids
// v0..v0+W−1).
func headSliceCE(d, logits, mx, r []float32, dloss float32, targets []int32, count, N, W, v0, VL int) {
	nv := headSliceCols(W, v0, VL)
	parallelFor(N, headGrain(W), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			dr := d[n*W : (n+1)*W]
			t := targets[n]
			if t < 0 || count == 0 {
				clear(dr)
				continue
			}
			g := dloss / float32(count)
			headSliceE(dr, logits[n*W:n*W+nv], nv, 1, mx[n])
			ceGrad(dr, r[n], g)
			if j := inSlice(t, v0, W); j >= 0 {
				dr[j] -= g
			}
		}
	})
}
