package kernels

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
)

// TestAttentionBI: AttentionForward agrees with the naive attention to
// float rounding; each row equals AttentionDecodeBI's from a KV cache
// filled one position at a time, bit for bit, on every kernel set and
// thread count; and a sequence's rows do not change with the batch it is
// in or with right padding.
func TestAttentionBI(t *testing.T) {
	defer biLevel(biDetectedLevel)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewSource(5))
	for _, c := range []struct{ B, T, NH, NKV, HS int }{
		{1, 1, 1, 1, 4}, {2, 9, 4, 2, 8}, {3, 20, 2, 2, 16}, {2, 37, 6, 2, 24}, {1, 33, 2, 1, 32},
	} {
		B, T, NH, NKV, HS := c.B, c.T, c.NH, c.NKV, c.HS
		name := fmt.Sprintf("B%d_T%d_NH%d_NKV%d_HS%d", B, T, NH, NKV, HS)
		q := randSlice(r, B*T*NH*HS, 1)
		k := randSlice(r, B*T*NKV*HS, 1)
		v := randSlice(r, B*T*NKV*HS, 1)
		valid := make([]bool, B*T)
		lens := make([]int, B)
		for b := range B {
			lens[b] = T - b*T/(2*B) // right padding on later sequences
			for t := range lens[b] {
				valid[b*T+t] = true
			}
		}
		out, lse := make([]float32, B*T*NH*HS), make([]float32, B*NH*T)
		AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
		ref, refLse := make([]float32, len(out)), make([]float32, len(lse))
		naiveAttentionForward(ref, refLse, q, k, v, valid, B, T, NH, NKV, HS)
		assertClose(t, name+" out", out, ref, 1e-5, 1e-4)
		assertClose(t, name+" lse", lse, refLse, 1e-5, 1e-5)
		for _, level := range biLevels() {
			biLevel(level)
			for _, threads := range []int{1, 2, 4} {
				runtime.GOMAXPROCS(threads)
				got, gotLse := make([]float32, len(out)), make([]float32, len(lse))
				AttentionForward(got, gotLse, q, k, v, valid, B, T, NH, NKV, HS)
				if err := sameBits(got, out); err != nil {
					t.Fatalf("%s %s threads=%d forward: %v", name, biLevelName[level], threads, err)
				}
				if err := sameBits(gotLse, lse); err != nil {
					t.Fatalf("%s %s threads=%d lse: %v", name, biLevelName[level], threads, err)
				}
				// decode each sequence from a cache, one position at a time
				for b := range B {
					kc := NewKVCacheBI(NKV, HS, 3) // grows several times
					o := make([]float32, NH*HS)
					s := make([]float32, NH*T)
					for tt := range lens[b] {
						kvo := (b*T + tt) * NKV * HS
						kc.Append(k[kvo:kvo+NKV*HS], v[kvo:kvo+NKV*HS])
						qo := (b*T + tt) * NH * HS
						AttentionDecodeBI(o, q[qo:qo+NH*HS], kc, tt+1, NH, s)
						if err := sameBits(o, out[qo:qo+NH*HS]); err != nil {
							t.Fatalf("%s %s: decode of sequence %d position %d: %v", name, biLevelName[level], b, tt, err)
						}
					}
					// a copied prefix decodes the same
					if lens[b] > 1 {
						n := lens[b] - 1
						cp := NewKVCacheBI(NKV, HS, 1)
						cp.CopyPrefix(kc, n)
						qo := (b*T + n - 1) * NH * HS
						AttentionDecodeBI(o, q[qo:qo+NH*HS], cp, n, NH, s)
						if err := sameBits(o, out[qo:qo+NH*HS]); err != nil {
							t.Fatalf("%s: copied prefix: %v", name, err)
						}
					}
				}
			}
		}
		// sequence 0 alone, unpadded, at its own length
		L := lens[0]
		q0, k0, v0 := q[:L*NH*HS], k[:L*NKV*HS], v[:L*NKV*HS]
		o0, l0 := make([]float32, L*NH*HS), make([]float32, NH*L)
		AttentionForward(o0, l0, q0, k0, v0, nil, 1, L, NH, NKV, HS)
		if err := sameBits(o0, out[:L*NH*HS]); err != nil {
			t.Fatalf("%s: sequence 0 alone: %v", name, err)
		}
	}
}
