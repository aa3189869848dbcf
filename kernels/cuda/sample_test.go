//go:build cuda && cgo

package cuda

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// pickRef is trainer/sample.go's pick, copied (the trainer's sampler is
// unexported): the specification Device.Sample must match token for token
// and bit for bit, with the draw u passed in.
func pickRef(logits []float32, temp float32, topK int, topP float64, u float64) (int32, float32) {
	V := len(logits)
	if topP == 0 {
		topP = 1
	}
	if temp == 0 {
		tok := int32(kernels.Argmax(logits))
		return tok, kernels.LogProbRow(logits, tok, 1)
	}
	inv := 1 / temp
	mx := float32(math.Inf(-1))
	for _, x := range logits {
		mx = max(mx, x*inv)
	}
	w := make([]float64, V)
	var total float64
	for v, x := range logits {
		w[v] = math.Exp(float64(x*inv - mx))
		total += w[v]
	}
	k := V
	if topK > 0 {
		k = min(k, topK)
	}
	var tok int32
	if k == V && topP >= 1 {
		target, cum, last := u*total, 0.0, 0
		tok = -1
		for v, x := range w {
			if x > 0 {
				cum += x
				last = v
				if cum > target {
					tok = int32(v)
					break
				}
			}
		}
		if tok < 0 {
			tok = int32(last)
		}
	} else {
		order := make([]int32, V)
		for v := range order {
			order[v] = int32(v)
		}
		slices.SortFunc(order, func(a, b int32) int {
			switch {
			case w[a] > w[b]:
				return -1
			case w[a] < w[b]:
				return 1
			}
			return int(a - b)
		})
		var mass float64
		for j := range k {
			mass += w[order[j]]
		}
		if topP < 1 {
			var cum float64
			n := 0
			for n < k && (n == 0 || cum < topP*mass) {
				cum += w[order[n]]
				n++
			}
			k, mass = n, cum
		}
		target, cum, last := u*mass, 0.0, order[0]
		tok = -1
		for _, v := range order[:k] {
			if w[v] > 0 {
				cum += w[v]
				last = v
				if cum > target {
					tok = v
					break
				}
			}
		}
		if tok < 0 {
			tok = last
		}
	}
	return tok, kernels.LogProbRow(logits, tok, temp)
}

func TestSample(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(19, 20))
	N, V, ld := 6, 3001, 3010
	logits := randn(rng, N*ld, 2)
	for i := 0; i < 40; i++ { // ties, for the argmax and the sort's id order
		logits[rng.IntN(N)*ld+rng.IntN(V)] = 4
	}
	xb := up(t, d, "logits", logits)
	tb := upI32(t, d, "tok", make([]int32, N))
	pb := up(t, d, "logp", make([]float32, N))
	for _, p := range []SampleParams{{0, 0, 0}, {1, 0, 0}, {0.8, 0, 1}, {0.7, 50, 0}, {1.2, 0, 0.9}, {0.9, 200, 0.5}, {1, 1, 0}} {
		u := make([]float64, N)
		for i := range u {
			u[i] = rand.New(rand.NewPCG(uint64(i), 7)).Float64()
		}
		must(t, d.Sample(tb, pb, xb, ld, N, V, u, p))
		toks := make([]int32, N)
		must(t, d.DownloadInt32(toks, tb))
		lps := down(t, d, pb, N)
		for i := range N {
			wt, wl := pickRef(logits[i*ld:i*ld+V], p.Temp, p.TopK, p.TopP, u[i])
			if toks[i] != wt || math.Float32bits(lps[i]) != math.Float32bits(wl) {
				t.Errorf("%+v row %d: token %d logprob %v, CPU sampler %d %v", p, i, toks[i], lps[i], wt, wl)
			}
		}
	}
}

// TestSampleGreedyNaN: the greedy token of rows holding NaN logits is the
// CPU's (kernels.Argmax: the first element, then strictly larger ones, so
// a NaN is chosen only at id 0). A NaN in the lanes' butterfly must not
// hide a larger value of a neighbouring lane.
func TestSampleGreedyNaN(t *testing.T) {
	d := openDev(t)
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	V := 700
	rows := [][2][]int{ // NaN positions, positions of the value 9
		{{0}, {5}},
		{{1}, {600}},
		{{2}, {3}},
		{{2, 34, 66}, {3, 35}},
		{{300}, {301}},
		{{256, 257}, {0}},
		{{1, 2}, {3}}, // lane 0 meets the 9 only through lanes 1 and 2
		{{32}, {33}},  // warp 1's result reaches thread 0 through its lane 0
	}
	N := len(rows) + 1
	logits := make([]float32, N*V)
	rng := rand.New(rand.NewPCG(23, 24))
	for i, r := range rows {
		row := logits[i*V : (i+1)*V]
		for v := range row {
			row[v] = float32(rng.NormFloat64())
		}
		for _, v := range r[0] {
			row[v] = nan
		}
		for _, v := range r[1] {
			row[v] = 9
		}
	}
	last := logits[len(rows)*V:] // -Inf everywhere but one NaN
	for v := range last {
		last[v] = inf
	}
	last[10] = nan
	xb := up(t, d, "logits", logits)
	tb := upI32(t, d, "tok", make([]int32, N))
	pb := up(t, d, "logp", make([]float32, N))
	must(t, d.Sample(tb, pb, xb, V, N, V, make([]float64, N), SampleParams{}))
	toks := make([]int32, N)
	must(t, d.DownloadInt32(toks, tb))
	for i := range N {
		if want := int32(kernels.Argmax(logits[i*V : (i+1)*V])); toks[i] != want {
			t.Errorf("row %d: greedy token %d, the CPU's argmax %d", i, toks[i], want)
		}
	}
}
