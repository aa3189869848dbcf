package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// softmaxRowNaive is softmaxRowGo with math.Exp: what the head computed
// before goExp, and still computes on a CPU with AVX and FMA.
func softmaxRowNaive(row []float32, inv float32) (mx float32, ex []float64, s, sz float64) {
	mx = float32(math.Inf(-1))
	for _, x := range row {
		mx = max(mx, float32(x*inv))
	}
	ex = make([]float64, len(row))
	for v, x := range row {
		z := float32(x * inv)
		ex[v] = math.Exp(float64(z - mx))
		s += ex[v]
		sz += float64(ex[v] * float64(z))
	}
	return mx, ex, s, sz
}

// softmaxRows are rows that reach every branch of the C loops: lengths
// around the vector widths and the cgo threshold, large spreads (exps that
// are denormal or 0), ±Inf, NaN, all-zero rows (max ±0) and -0.
func softmaxRows(rng *rand.Rand) [][]float32 {
	var rows [][]float32
	for _, n := range []int{1, 7, 255, 256, 257, 263, 1000, 4099} {
		for kind := range 7 {
			row := make([]float32, n)
			for i := range row {
				switch kind {
				case 0:
					row[i] = float32(rng.NormFloat64() * 3)
				case 1:
					row[i] = float32(rng.NormFloat64() * 400) // exps underflow, some denormal
				case 2:
					row[i] = float32(math.Copysign(0, float64(i%2)-0.5)) // ±0 only
				default:
					row[i] = float32(rng.NormFloat64())
				}
			}
			switch kind {
			case 3:
				row[rng.IntN(n)] = float32(math.Inf(-1))
			case 4:
				row[rng.IntN(n)] = float32(math.NaN())
			case 5:
				row[rng.IntN(n)] = float32(math.Inf(1))
			case 6:
				row[rng.IntN(n)] = -800 // one exp underflows to 0 past the denormals
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func sameF64(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

func sameF32(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// TestSoftmaxRowSetsBitIdentical: every kernel set's softmaxRow gives the
// Go loop's bits (ex as float32 and float64, both sums, the max), and the
// Go loop gives math.Exp's where math.Exp has its FMA path, so the loss
// head and the sampler compute what they computed before.
func TestSoftmaxRowSetsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for ri, row := range softmaxRows(rng) {
		for _, inv := range []float32{1, 1 / 0.7} {
			n := len(row)
			er0, w0 := make([]float32, n), make([]float64, n)
			mx0, s0, sz0 := softmaxRowGo(row, inv, er0, w0, true)
			if mathExpHasFMAPath() {
				mxN, exN, sN, szN := softmaxRowNaive(row, inv)
				if !sameF32(mx0, mxN) || !sameF64(s0, sN) || !sameF64(sz0, szN) {
					t.Fatalf("row %d: Go loop (%v %v %v) != math.Exp loop (%v %v %v)", ri, mx0, s0, sz0, mxN, sN, szN)
				}
				for v := range exN {
					if !sameF64(w0[v], exN[v]) {
						t.Fatalf("row %d id %d: goExp %v, math.Exp %v", ri, v, w0[v], exN[v])
					}
				}
			}
			for level := range biDetectedLevel + 1 {
				useSet(t, level)
				er, w := make([]float32, n), make([]float64, n)
				mx, s, sz := softmaxRow(row, inv, er, w, true)
				if !sameF32(mx, mx0) || !sameF64(s, s0) || !sameF64(sz, sz0) {
					t.Fatalf("set %s row %d (n %d): max, s, sz = %v %v %v, Go %v %v %v", KernelSet(), ri, n, mx, s, sz, mx0, s0, sz0)
				}
				for v := range er {
					if !sameF32(er[v], er0[v]) || !sameF64(w[v], w0[v]) {
						t.Fatalf("set %s row %d id %d (logit %v): ex %v / %v, Go %v / %v", KernelSet(), ri, v, row[v], er[v], w[v], er0[v], w0[v])
					}
				}
				_, s2, _ := softmaxRow(row, inv, nil, nil, false)
				if !sameF64(s2, s0) {
					t.Fatalf("set %s row %d: s without outputs %v, with %v", KernelSet(), ri, s2, s0)
				}
			}
		}
	}
}

// TestExpRowIsSoftmaxRows: given the max softmaxRow found, expRow gives
// its exponentials bit for bit, on every kernel set (the head's backward
// by vocabulary slices recomputes e with it), also on a part of the row.
func TestExpRowIsSoftmaxRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for ri, row := range softmaxRows(rng) {
		for _, inv := range []float32{1, 1 / 0.7} {
			n := len(row)
			er0 := make([]float32, n)
			mx, _, _ := softmaxRowGo(row, inv, er0, nil, false)
			for level := range biDetectedLevel + 1 {
				useSet(t, level)
				er := make([]float32, n)
				expRow(row, inv, mx, er)
				lo := n / 3 // a slice that starts off the vector width
				expRow(row[lo:], inv, mx, er[lo:])
				for v := range er {
					if !sameF32(er[v], er0[v]) {
						t.Fatalf("set %s row %d id %d (logit %v): expRow %v, softmaxRow %v", KernelSet(), ri, v, row[v], er[v], er0[v])
					}
				}
			}
		}
	}
}

// BenchmarkSoftmaxRow: one row of Qwen2.5's vocabulary (151,936 logits),
// the loss head's pass (float32 ex, both sums), per kernel set.
func BenchmarkSoftmaxRow(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	row := make([]float32, 151936)
	for i := range row {
		row[i] = float32(rng.NormFloat64() * 3)
	}
	er := make([]float32, len(row))
	for level := range biDetectedLevel + 1 {
		b.Run(kernelSetNames[level], func(b *testing.B) {
			useSet(b, level)
			for b.Loop() {
				softmaxRow(row, 1, er, nil, true)
			}
			b.ReportMetric(float64(len(row))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mexp/s")
		})
	}
}
