package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestAttentionBlocksMatchFullT: the causal block skipping and the C
// probabilities (issue 16) give the bits of the products over all T×T
// with the Go probabilities (attention_old_test.go), forward and backward,
// on every kernel set: T not a multiple of attnBlock, padding in the
// middle and at the end, GQA groups of 1 and 7, peaked scores (exps that
// underflow to subnormals and to 0), and signed zeros that only the
// −0 fix-ups (attnFixNegZero) keep equal.
func TestAttentionBlocksMatchFullT(t *testing.T) {
	defer biLevel(biDetectedLevel)
	r := rand.New(rand.NewSource(16))
	type shape struct {
		T, NH, NKV, HS int
		amp            float32 // scale of q (large: peaked rows)
		zeros          bool    // the signed-zero case
	}
	var shapes []shape
	for _, T := range []int{1, 17, 100, 257} {
		shapes = append(shapes, shape{T, 2, 2, 24, 1, false}, shape{T, 7, 1, 16, 1, false})
	}
	shapes = append(shapes, shape{100, 7, 1, 24, 12, false}, shape{100, 7, 1, 24, 100, false}, shape{70, 7, 1, 16, 1, true}, shape{257, 2, 2, 64, 1, true})
	for _, s := range shapes {
		name := fmt.Sprintf("T%d_NH%d_NKV%d_HS%d_amp%g_zeros%v", s.T, s.NH, s.NKV, s.HS, s.amp, s.zeros)
		in := newAttnCase(r, 2, s.T, s.NH, s.NKV, s.HS, s.amp, s.zeros)
		for _, level := range biLevels() {
			biLevel(level)
			in.check(t, name+"/"+biLevelName[level])
		}
	}
}

// attnCase is one input of TestAttentionBlocksMatchFullT.
type attnCase struct {
	B, T, NH, NKV, HS int
	q, k, v, dout     []float32
	valid             []bool
	dq0, dk0, dv0     []float32 // the gradients' start values
	zeros             bool
}

func newAttnCase(r *rand.Rand, B, T, NH, NKV, HS int, amp float32, zeros bool) *attnCase {
	c := &attnCase{B: B, T: T, NH: NH, NKV: NKV, HS: HS}
	nq, nk := B*T*NH*HS, B*T*NKV*HS
	c.q, c.k, c.v, c.dout = randSlice(r, nq, amp), randSlice(r, nk, 1), randSlice(r, nk, 1), randSlice(r, nq, 1)
	c.dq0, c.dk0, c.dv0 = randSlice(r, nq, 1), randSlice(r, nk, 1), randSlice(r, nk, 1)
	c.valid = make([]bool, B*T)
	for i := range c.valid {
		c.valid[i] = true
	}
	for t := T / 3; t < min(T, T/3+4) && T > 1; t++ {
		c.valid[t] = false // sequence 0: padding in the middle
	}
	for t := T - T/4; t < T && T > 1; t++ {
		c.valid[T+t] = false // sequence 1: padding at the end
	}
	if zeros {
		c.zeros = true
		c.signedZeros()
	}
	return c
}

// signedZeros makes column 0 of every head give −0 accumulators that the
// skipped +0 terms turn into +0: the gradients start at −0; v is a tiny
// negative subnormal in the first half (p·v rounds to −0), 1 after; dO
// and q are 1 in the first half, −0 after; k is −0 in the first half, 1
// after.
func (c *attnCase) signedZeros() {
	negZero := float32(math.Copysign(0, -1))
	for _, g := range [][]float32{c.dq0, c.dk0, c.dv0} {
		for i := range g {
			g[i] = negZero
		}
	}
	half := c.T / 2
	set := func(x []float32, heads int, first, second float32) {
		for b := range c.B {
			for t := range c.T {
				for h := range heads {
					x[((b*c.T+t)*heads+h)*c.HS] = map[bool]float32{true: first, false: second}[t < half]
				}
			}
		}
	}
	set(c.v, c.NKV, -math.SmallestNonzeroFloat32, 1)
	set(c.dout, c.NH, 1, negZero)
	set(c.q, c.NH, 1, negZero)
	set(c.k, c.NKV, negZero, 1)
}

// check runs the new and the old kernels on c and compares every output.
func (c *attnCase) check(t *testing.T, name string) {
	t.Helper()
	B, T, NH, NKV, HS := c.B, c.T, c.NH, c.NKV, c.HS
	for _, valid := range [][]bool{nil, c.valid} {
		out, lse := make([]float32, len(c.q)), make([]float32, B*NH*T)
		attentionForwardBI(out, lse, c.q, c.k, c.v, valid, B, T, NH, NKV, HS)
		wout, wlse := make([]float32, len(c.q)), make([]float32, B*NH*T)
		attentionForwardFullT(wout, wlse, c.q, c.k, c.v, valid, B, T, NH, NKV, HS)
		what := fmt.Sprintf("%s padding=%v", name, valid != nil)
		mustSameBits(t, what+" out", out, wout)
		mustSameBits(t, what+" lse", lse, wlse)
		if valid == nil && !c.zeros {
			c.checkDecode(t, what, out)
		}
		got := [3][]float32{clone(c.dq0), clone(c.dk0), clone(c.dv0)}
		want := [3][]float32{clone(c.dq0), clone(c.dk0), clone(c.dv0)}
		attnBackwardGEMM(got[0], got[1], got[2], c.dout, c.q, c.k, c.v, out, lse, valid, B, T, NH, NKV, HS)
		attnBackwardGEMMFullT(want[0], want[1], want[2], c.dout, c.q, c.k, c.v, out, lse, valid, B, T, NH, NKV, HS)
		for i, n := range []string{"dq", "dk", "dv"} {
			mustSameBits(t, what+" "+n, got[i], want[i])
		}
	}
}

func mustSameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if err := sameBits(got, want); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkDecode: every position decoded from a KV cache (attnProbsRows)
// has the forward's bits (not in the signed-zero case, whose −0 outputs
// are where the forward over more keys and the decode have always
// differed: attnForwardBlock).
func (c *attnCase) checkDecode(t *testing.T, what string, out []float32) {
	t.Helper()
	T, NH, NKV, HS := c.T, c.NH, c.NKV, c.HS
	o, s := make([]float32, NH*HS), make([]float32, NH*T)
	for b := range c.B {
		kc := NewKVCacheBI(NKV, HS, T)
		for tt := range T {
			kvo := (b*T + tt) * NKV * HS
			kc.Append(c.k[kvo:kvo+NKV*HS], c.v[kvo:kvo+NKV*HS])
			qo := (b*T + tt) * NH * HS
			AttentionDecodeBI(o, c.q[qo:qo+NH*HS], kc, tt+1, NH, s)
			mustSameBits(t, fmt.Sprintf("%s decode of sequence %d position %d", what, b, tt), o, out[qo:qo+NH*HS])
		}
	}
}
