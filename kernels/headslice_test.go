package kernels

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestHeadSliceIsRows: the vocabulary-slice backward (HeadSliceLogp,
// HeadSliceCE) gives, for every slice width and kernel set, the bits the
// row form (HeadBackwardLogp, HeadBackwardCE after HeadForward) gives the
// same ids: with and without entropy, temperatures 1 and 0.7, ids past VL,
// rows that take no gradient, ignored targets, targets in every slice.
func TestHeadSliceIsRows(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, V := range []int{37, 700} {
		const N = 6
		VL := V - 5
		logits := randSlice(r, N*V, 4)
		targets := []int32{0, int32(VL - 1), -1, int32(V / 2), 17, 3}
		dlogp, dent := randSlice(r, N, 1), randSlice(r, N, 0.1)
		dlogp[1], dent[1] = 0, 0 // a row with no gradient at all
		for level := range biDetectedLevel + 1 {
			useSet(t, level)
			for _, tc := range []struct {
				temp    float32
				entropy bool
				ce      bool
			}{{1, false, false}, {0.7, true, false}, {0.7, false, false}, {1, false, true}} {
				f := func(n int) []float32 { return make([]float32, n) }
				e, rr, lse, lp, ent, mx := f(N*V), f(N), f(N), f(N), f(N), f(N)
				var entArg, dentArg []float32
				if tc.entropy {
					entArg, dentArg = ent, dent
				}
				HeadForwardMax(e, rr, lse, lp, entArg, mx, logits, targets, N, V, VL, tc.temp)
				if tc.ce {
					HeadBackwardCE(e, rr, 0.7, targets, 5, N, V)
				} else {
					HeadBackwardLogp(e, rr, dlogp, dentArg, logits, lse, entArg, targets, N, V, VL, tc.temp)
				}
				for _, W := range []int{16, 32, V} {
					name := fmt.Sprintf("set %s V %d temp %v entropy %v ce %v W %d", KernelSet(), V, tc.temp, tc.entropy, tc.ce, W)
					for v0 := 0; v0 < V; v0 += W {
						w := min(W, V-v0)
						zs, d := f(N*w), f(N*w)
						for n := range N {
							copy(zs[n*w:(n+1)*w], logits[n*V+v0:])
						}
						if tc.ce {
							HeadSliceCE(d, zs, mx, rr, 0.7, targets, 5, N, w, v0, VL)
						} else {
							HeadSliceLogp(d, zs, mx, rr, dlogp, dentArg, lse, entArg, targets, N, w, v0, VL, tc.temp)
						}
						for n := range N {
							for j := range w {
								if got, want := d[n*w+j], e[n*V+v0+j]; !sameF32(got, want) {
									t.Fatalf("%s: row %d id %d: slice %v, rows %v", name, n, v0+j, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestPackedWeightRows: the product with a view of rows n0..n1 of a
// packed weight (float32 or bf16) is those columns of the whole product,
// bit for bit.
func TestPackedWeightRows(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	const M, K, N = 5, 33, 71
	inp, w := randSlice(r, M*K, 1), randSlice(r, N*K, 1)
	pw, pb := PackWeight(nil, w, N, K), PackWeightBF16(nil, w, N, K)
	all, allB := make([]float32, M*N), make([]float32, M*N)
	MatmulForwardBI(all, inp, pw, nil, M)
	MatmulForwardBF16(allB, inp, pb, nil, M)
	for _, s := range [][2]int{{0, 16}, {16, 71}, {48, 50}, {64, 71}} {
		W := s[1] - s[0]
		out, outB := make([]float32, M*W), make([]float32, M*W)
		MatmulForwardBI(out, inp, pw.Rows(s[0], s[1]), nil, M)
		MatmulForwardBF16(outB, inp, pb.Rows(s[0], s[1]), nil, M)
		for m := range M {
			for j := range W {
				if !sameF32(out[m*W+j], all[m*N+s[0]+j]) || !sameF32(outB[m*W+j], allB[m*N+s[0]+j]) {
					t.Fatalf("rows %v: out[%d,%d] %v / bf16 %v, whole product %v / %v", s, m, j, out[m*W+j], outB[m*W+j], all[m*N+s[0]+j], allB[m*N+s[0]+j])
				}
			}
		}
	}
}
