package rl

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Episode rows (rollout with env) carry policy_mask: one BOOLEAN per
// completion token, true where the policy sampled it and false for the
// environment's observation tokens. train's loss and ratio, and logprobs'
// values, cover only the policy's tokens; a row without the column (or with
// a NULL mask) is all policy.

// policyMaskColumn is the column name.
const policyMaskColumn = "policy_mask"

// bools copies a BOOLEAN[] row; ok is false for NULL (the whole list), NULL
// elements or a wrong type.
func bools(col arrow.Array, i int) ([]bool, bool) {
	v, ok := listAt(col, i)
	if !ok {
		return nil, false
	}
	defer v.Release()
	a, ok := v.(*array.Boolean)
	if !ok || a.NullN() > 0 {
		return nil, false
	}
	out := make([]bool, a.Len())
	for k := range out {
		out[k] = a.Value(k)
	}
	return out, true
}

// maskIndex lists the positions where mask is true.
func maskIndex(mask []bool) []int32 {
	idx := make([]int32, 0, len(mask))
	for k, m := range mask {
		if m {
			idx = append(idx, int32(k))
		}
	}
	return idx
}

// compact picks xs at idx.
func compact(xs []float32, idx []int32) []float32 {
	if xs == nil {
		return nil
	}
	out := make([]float32, len(idx))
	for k, j := range idx {
		out[k] = xs[j]
	}
	return out
}
