package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// Finite-difference gradient checks. Each case has a float64 forward (the
// naive twin instantiated at float64) and the fast float32 backward. With
// L = Σ_i w_i·out_i for random weights w, the analytic gradient is the
// backward with dout = w; the reference is the central difference
// (L(x+h) - L(x-h)) / 2h in float64 with h = 1e-4 at up to maxChecks sampled
// elements of every input. Tolerance: |analytic - fd| <= atol + rtol·|fd|
// with atol = 1e-4, rtol = 1e-3 unless a case says otherwise (float32
// backward against a float64 reference).

type gradCase struct {
	name   string
	inputs [][]float32 // the differentiable inputs
	// forward64 returns the outputs for float64 copies of the inputs.
	forward64 func(in [][]float64) []float64
	// backward accumulates into din (zeroed, shaped like inputs) the
	// gradient for dout (shaped like forward64's result), running the fast
	// float32 forward first when it needs saved values.
	backward   func(din [][]float32, dout []float32)
	atol, rtol float64
}

const maxChecks = 48

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func runGradCase(t *testing.T, r *rand.Rand, c gradCase) {
	t.Helper()
	in64 := make([][]float64, len(c.inputs))
	for i, x := range c.inputs {
		in64[i] = to64(x)
	}
	out := c.forward64(in64)
	w := make([]float64, len(out))
	dout := make([]float32, len(out))
	for i := range w {
		dout[i] = r.Float32()*2 - 1
		w[i] = float64(dout[i])
	}
	loss := func() float64 {
		var s float64
		for i, y := range c.forward64(in64) {
			s += w[i] * y
		}
		return s
	}
	din := make([][]float32, len(c.inputs))
	for i, x := range c.inputs {
		din[i] = make([]float32, len(x))
	}
	c.backward(din, dout)
	atol, rtol := c.atol, c.rtol
	if atol == 0 {
		atol = 1e-4
	}
	if rtol == 0 {
		rtol = 1e-3
	}
	const h = 1e-4
	for i := range in64 {
		idx := r.Perm(len(in64[i]))
		if len(idx) > maxChecks {
			idx = idx[:maxChecks]
		}
		for _, j := range idx {
			x0 := in64[i][j]
			in64[i][j] = x0 + h
			lp := loss()
			in64[i][j] = x0 - h
			lm := loss()
			in64[i][j] = x0
			fd := (lp - lm) / (2 * h)
			got := float64(din[i][j])
			if math.Abs(got-fd) > atol+rtol*math.Abs(fd) {
				t.Errorf("%s: d input %d [%d] = %.6g, finite difference %.6g", c.name, i, j, got, fd)
			}
		}
	}
}

func from64(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func TestGradFiniteDifference(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	// Sizes are small either way: the check is O(inputs·forward).
	B, C, OC := 5, 12, 7
	N, V := 6, 11
	aB, aT, aNH, aNKV, aHS := 2, 5, 4, 2, 6
	tokens := []int32{3, 0, 3, 9, 1, 3}
	targets := []int32{2, -1, 10, 0, 5, -1}
	pos := []int32{0, 1, 2, 7, 100, 4095}
	valid := []bool{true, true, true, true, true, false, false, true, true, true}
	valid10 := []bool{false, true, true, false, true, true, true, true, true, false}
	attIn := func() [][]float32 {
		return [][]float32{randSlice(r, aB*aT*aNH*aHS, 1), randSlice(r, aB*aT*aNKV*aHS, 1), randSlice(r, aB*aT*aNKV*aHS, 1)}
	}

	cases := []gradCase{
		{
			name:   "matmul+bias",
			inputs: [][]float32{randSlice(r, B*C, 1), randSlice(r, OC*C, 1), randSlice(r, OC, 1)},
			forward64: func(in [][]float64) []float64 {
				out := make([]float64, B*OC)
				naiveMatmulForward(out, in[0], in[1], in[2], B, C, OC)
				return out
			},
		},
		{
			name:   "embedding",
			inputs: [][]float32{randSlice(r, 10*C, 1)},
			forward64: func(in [][]float64) []float64 {
				out := make([]float64, N*C)
				naiveEmbeddingForward(out, in[0], tokens, N, C)
				return out
			},
		},
		{
			name:   "rmsnorm",
			inputs: [][]float32{randSlice(r, N*C, 2), randSlice(r, C, 1)},
			forward64: func(in [][]float64) []float64 {
				out, rstd := make([]float64, N*C), make([]float64, N)
				naiveRMSNormForward(out, rstd, in[0], in[1], N, C, 1e-5)
				return out
			},
		},
		{
			name:   "rope",
			inputs: [][]float32{randSlice(r, N*3*8, 1)},
			forward64: func(in [][]float64) []float64 {
				out := make([]float64, N*3*8)
				naiveRopeForward(out, in[0], pos, N, 3, 8, 10000)
				return out
			},
		},
		{
			name:   "attention-gqa",
			inputs: attIn(),
			forward64: func(in [][]float64) []float64 {
				out, lse := make([]float64, aB*aT*aNH*aHS), make([]float64, aB*aNH*aT)
				naiveAttentionForward(out, lse, in[0], in[1], in[2], nil, aB, aT, aNH, aNKV, aHS)
				return out
			},
		},
		{
			name:   "attention-gqa-padded",
			inputs: attIn(),
			forward64: func(in [][]float64) []float64 {
				out, lse := make([]float64, aB*aT*aNH*aHS), make([]float64, aB*aNH*aT)
				naiveAttentionForward(out, lse, in[0], in[1], in[2], valid, aB, aT, aNH, aNKV, aHS)
				return out
			},
		},
		{
			name:   "attention-mha-left-padded",
			inputs: [][]float32{randSlice(r, aB*aT*2*aHS, 1), randSlice(r, aB*aT*2*aHS, 1), randSlice(r, aB*aT*2*aHS, 1)},
			forward64: func(in [][]float64) []float64 {
				lv := []bool{false, false, true, true, true, true, true, true, true, true}
				out, lse := make([]float64, aB*aT*2*aHS), make([]float64, aB*2*aT)
				naiveAttentionForward(out, lse, in[0], in[1], in[2], lv, aB, aT, 2, 2, aHS)
				return out
			},
		},
		{
			// T = 10 >= attnGEMMMinT: the matrix-product path
			name:   "attention-gqa-padded-T10",
			inputs: [][]float32{randSlice(r, 10*4*aHS, 1), randSlice(r, 10*2*aHS, 1), randSlice(r, 10*2*aHS, 1)},
			forward64: func(in [][]float64) []float64 {
				out, lse := make([]float64, 10*4*aHS), make([]float64, 4*10)
				naiveAttentionForward(out, lse, in[0], in[1], in[2], valid10, 1, 10, 4, 2, aHS)
				return out
			},
		},
		{
			name:   "swiglu",
			inputs: [][]float32{randSlice(r, 40, 4), randSlice(r, 40, 2)},
			forward64: func(in [][]float64) []float64 {
				out := make([]float64, 40)
				naiveSwiGLUForward(out, in[0], in[1], 40)
				return out
			},
		},
		{
			name:   "residual",
			inputs: [][]float32{randSlice(r, 20, 1), randSlice(r, 20, 1)},
			forward64: func(in [][]float64) []float64 {
				out := make([]float64, 20)
				for i := range out {
					out[i] = in[0][i] + in[1][i]
				}
				return out
			},
		},
		{
			name:   "logprobs-temp0.7",
			inputs: [][]float32{randSlice(r, N*V, 3)},
			forward64: func(in [][]float64) []float64 {
				logp, lse := make([]float64, N), make([]float64, N)
				naiveLogProbsForward(logp, lse, in[0], targets, N, V, 0.7)
				return logp
			},
		},
		{
			name:   "cross-entropy",
			inputs: [][]float32{randSlice(r, N*V, 3)},
			forward64: func(in [][]float64) []float64 {
				return []float64{naiveCrossEntropy(in[0], targets, N, V)}
			},
		},
		{
			name:   "entropy-temp1.3",
			inputs: [][]float32{randSlice(r, N*V, 3)},
			forward64: func(in [][]float64) []float64 {
				ent, lse := make([]float64, N), make([]float64, N)
				naiveEntropyForward(ent, lse, in[0], N, V, 1.3)
				return ent
			},
		},
	}
	// The fast backward of each case, by name (kept apart so the table above
	// reads as the list of forwards).
	backward := map[string]func(c gradCase, din [][]float32, dout []float32){
		"matmul+bias": func(c gradCase, din [][]float32, dout []float32) {
			MatmulBackward(din[0], din[1], din[2], dout, c.inputs[0], c.inputs[1], B, C, OC)
		},
		"embedding": func(c gradCase, din [][]float32, dout []float32) {
			EmbeddingBackward(din[0], dout, tokens, N, C)
		},
		"rmsnorm": func(c gradCase, din [][]float32, dout []float32) {
			out, rstd := make([]float32, N*C), make([]float32, N)
			RMSNormForward(out, rstd, c.inputs[0], c.inputs[1], N, C, 1e-5)
			RMSNormBackward(din[0], din[1], dout, c.inputs[0], c.inputs[1], rstd, N, C)
		},
		"rope": func(c gradCase, din [][]float32, dout []float32) {
			RopeBackward(din[0], dout, pos, N, 3, 8, 10000)
		},
		"attention-gqa": func(c gradCase, din [][]float32, dout []float32) {
			attBackward(c, din, dout, nil, aB, aT, aNH, aNKV, aHS)
		},
		"attention-gqa-padded": func(c gradCase, din [][]float32, dout []float32) {
			attBackward(c, din, dout, valid, aB, aT, aNH, aNKV, aHS)
		},
		"attention-mha-left-padded": func(c gradCase, din [][]float32, dout []float32) {
			lv := []bool{false, false, true, true, true, true, true, true, true, true}
			attBackward(c, din, dout, lv, aB, aT, 2, 2, aHS)
		},
		"attention-gqa-padded-T10": func(c gradCase, din [][]float32, dout []float32) {
			attBackward(c, din, dout, valid10, 1, 10, 4, 2, aHS)
		},
		"swiglu": func(c gradCase, din [][]float32, dout []float32) {
			SwiGLUBackward(din[0], din[1], dout, c.inputs[0], c.inputs[1], 40)
		},
		"residual": func(c gradCase, din [][]float32, dout []float32) {
			ResidualBackward(din[0], din[1], dout, 20)
		},
		"logprobs-temp0.7": func(c gradCase, din [][]float32, dout []float32) {
			logp, lse := make([]float32, N), make([]float32, N)
			LogProbsForward(logp, lse, c.inputs[0], targets, N, V, 0.7)
			LogProbsBackward(din[0], dout, c.inputs[0], lse, targets, N, V, 0.7)
		},
		"cross-entropy": func(c gradCase, din [][]float32, dout []float32) {
			losses, lse := make([]float32, N), make([]float32, N)
			CrossEntropyForward(losses, lse, c.inputs[0], targets, N, V)
			CrossEntropyBackward(din[0], dout[0], c.inputs[0], lse, targets, N, V)
		},
		"entropy-temp1.3": func(c gradCase, din [][]float32, dout []float32) {
			ent, lse := make([]float32, N), make([]float32, N)
			EntropyForward(ent, lse, c.inputs[0], N, V, 1.3)
			EntropyBackward(din[0], dout, c.inputs[0], lse, ent, N, V, 1.3)
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bw := backward[c.name]
			if bw == nil {
				t.Fatalf("no backward for %s", c.name)
			}
			c.backward = func(din [][]float32, dout []float32) { bw(c, din, dout) }
			runGradCase(t, r, c)
		})
	}
}

func attBackward(c gradCase, din [][]float32, dout []float32, valid []bool, B, T, NH, NKV, HS int) {
	out, lse := make([]float32, B*T*NH*HS), make([]float32, B*NH*T)
	AttentionForward(out, lse, c.inputs[0], c.inputs[1], c.inputs[2], valid, B, T, NH, NKV, HS)
	AttentionBackward(din[0], din[1], din[2], dout, c.inputs[0], c.inputs[1], c.inputs[2], out, lse, valid, B, T, NH, NKV, HS)
}
