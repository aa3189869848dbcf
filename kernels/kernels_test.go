package kernels

import (
	"math"
	"math/rand"
	"runtime"
	"slices"
	"testing"
)

// Fast kernels against their naive twins on random inputs. Tolerances are
// stated per case as |got-want| <= atol + rtol·|want|; kernels that keep the
// naive summation order are required to match exactly (atol = rtol = 0).

// sizes returns the small sizes under -short and the larger ones otherwise.
func sizes[T any](small, large T) T {
	if testing.Short() {
		return small
	}
	return large
}

func TestMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	N := sizes(37, 301)
	C := sizes(24, 136)
	V := sizes(50, 1003)
	type result struct {
		name       string
		got, want  []float32
		atol, rtol float64
	}
	cases := []struct {
		name string
		run  func() []result
	}{
		{"embedding", func() []result {
			wte := randSlice(r, V*C, 1)
			tok := make([]int32, N)
			for i := range tok {
				tok[i] = int32(r.Intn(V))
			}
			tok[1] = tok[0] // repeated tokens accumulate
			got, want := make([]float32, N*C), make([]float32, N*C)
			EmbeddingForward(got, wte, tok, N, C)
			naiveEmbeddingForward(want, wte, tok, N, C)
			dout := randSlice(r, N*C, 1)
			dg, dw := randSlice(r, V*C, 1), make([]float32, V*C)
			copy(dw, dg)
			EmbeddingBackward(dg, dout, tok, N, C)
			naiveEmbeddingBackward(dw, dout, tok, N, C)
			return []result{{"out", got, want, 0, 0}, {"dwte", dg, dw, 0, 0}}
		}},
		{"rmsnorm", func() []result {
			x, w := randSlice(r, N*C, 3), randSlice(r, C, 1)
			got, want := make([]float32, N*C), make([]float32, N*C)
			rg, rw := make([]float32, N), make([]float32, N)
			RMSNormForward(got, rg, x, w, N, C, 1e-6)
			naiveRMSNormForward(want, rw, x, w, N, C, 1e-6)
			dout := randSlice(r, N*C, 1)
			dxg, dxw := make([]float32, N*C), make([]float32, N*C)
			dwg, dww := make([]float32, C), make([]float32, C)
			RMSNormBackward(dxg, dwg, dout, x, w, rg, N, C)
			naiveRMSNormBackward(dxw, dww, dout, x, w, rw, N, C)
			return []result{{"out", got, want, 1e-6, 1e-5}, {"rstd", rg, rw, 1e-6, 1e-5},
				{"dinp", dxg, dxw, 1e-5, 1e-4}, {"dweight", dwg, dww, 1e-4, 1e-4}}
		}},
		{"rope", func() []result {
			NH, HS := 3, 16
			x := randSlice(r, N*NH*HS, 1)
			pos := make([]int32, N)
			for i := range pos {
				pos[i] = int32(r.Intn(32768))
			}
			got, want := make([]float32, N*NH*HS), make([]float32, N*NH*HS)
			RopeForward(got, x, pos, N, NH, HS, 1e6)
			naiveRopeForward(want, x, pos, N, NH, HS, 1e6)
			inplace := clone(x)
			RopeForward(inplace, inplace, pos, N, NH, HS, 1e6)
			dout := randSlice(r, len(x), 1)
			dg, dw := make([]float32, len(x)), make([]float32, len(x))
			RopeBackward(dg, dout, pos, N, NH, HS, 1e6)
			naiveRopeBackward(dw, dout, pos, N, NH, HS, 1e6)
			return []result{{"out", got, want, 0, 0}, {"in-place", inplace, want, 0, 0}, {"dinp", dg, dw, 0, 0}}
		}},
		{"swiglu", func() []result {
			n := N * C
			g, u := randSlice(r, n, 6), randSlice(r, n, 2)
			got, want := make([]float32, n), make([]float32, n)
			SwiGLUForward(got, g, u, n)
			naiveSwiGLUForward(want, g, u, n)
			dout := randSlice(r, n, 1)
			dgg, dug, dgw, duw := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			SwiGLUBackward(dgg, dug, dout, g, u, n)
			naiveSwiGLUBackward(dgw, duw, dout, g, u, n)
			return []result{{"out", got, want, 1e-6, 1e-6}, {"dgate", dgg, dgw, 1e-6, 1e-5}, {"dup", dug, duw, 1e-6, 1e-6}}
		}},
		{"residual", func() []result {
			n := N * C
			a, b, dout := randSlice(r, n, 1), randSlice(r, n, 1), randSlice(r, n, 1)
			got, want := make([]float32, n), make([]float32, n)
			ResidualForward(got, a, b, n)
			for i := range want {
				want[i] = a[i] + b[i]
			}
			da, db := clone(a), clone(b)
			ResidualBackward(da, db, dout, n)
			wa, wb := clone(a), clone(b)
			for i := range wa {
				wa[i] += dout[i]
				wb[i] += dout[i]
			}
			return []result{{"out", got, want, 0, 0}, {"da", da, wa, 0, 0}, {"db", db, wb, 0, 0}}
		}},
		{"logprobs-entropy-softmax", func() []result {
			logits := randSlice(r, N*V, 8)
			tg := make([]int32, N)
			for i := range tg {
				tg[i] = int32(r.Intn(V+3)) - 3 // some ignored rows
			}
			const temp = 0.6
			lp, lse, wlp, wlse := make([]float32, N), make([]float32, N), make([]float32, N), make([]float32, N)
			LogProbsForward(lp, lse, logits, tg, N, V, temp)
			naiveLogProbsForward(wlp, wlse, logits, tg, N, V, temp)
			ent, lse2, went, wlse2 := make([]float32, N), make([]float32, N), make([]float32, N), make([]float32, N)
			EntropyForward(ent, lse2, logits, N, V, temp)
			naiveEntropyForward(went, wlse2, logits, N, V, temp)
			pr, wpr := make([]float32, N*V), make([]float32, N*V)
			Softmax(pr, logits, N, V, temp)
			naiveSoftmax(wpr, logits, N, V, temp)
			ls := make([]float32, N*V)
			LogSoftmax(ls, logits, N, V, temp)
			wls := make([]float32, N*V)
			for n := 0; n < N; n++ {
				for v := 0; v < V; v++ {
					wls[n*V+v] = float32(math.Log(float64(wpr[n*V+v])))
				}
			}
			return []result{{"logp", lp, wlp, 1e-5, 1e-5}, {"lse", lse, wlse, 1e-5, 1e-6},
				{"entropy", ent, went, 1e-5, 1e-5}, {"entropy-lse", lse2, wlse2, 1e-5, 1e-6},
				{"softmax", pr, wpr, 1e-7, 1e-5}, {"log-softmax", ls, wls, 1e-5, 1e-5}}
		}},
		{"attention", func() []result {
			B, T, NH, NKV, HS := 3, sizes(9, 40), 6, 2, 16
			q, k, v := randSlice(r, B*T*NH*HS, 2), randSlice(r, B*T*NKV*HS, 2), randSlice(r, B*T*NKV*HS, 1)
			valid := make([]bool, B*T)
			for i := range valid {
				valid[i] = r.Intn(4) != 0
			}
			for i := 0; i < T/2; i++ { // sequence 1 left-padded, sequence 2 right-padded
				valid[T+i] = false
				valid[2*T+T-1-i] = false
			}
			out, lse := make([]float32, len(q)), make([]float32, B*NH*T)
			wout, wlse := make([]float32, len(q)), make([]float32, B*NH*T)
			AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
			naiveAttentionForward(wout, wlse, q, k, v, valid, B, T, NH, NKV, HS)
			dout := randSlice(r, len(q), 1)
			g := [3][]float32{make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))}
			w := [3][]float32{make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))}
			AttentionBackward(g[0], g[1], g[2], dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
			naiveAttentionBackward(w[0], w[1], w[2], dout, q, k, v, wout, wlse, valid, B, T, NH, NKV, HS)
			return []result{{"out", out, wout, 1e-5, 1e-5}, {"lse", lse, wlse, 1e-5, 1e-5},
				{"dq", g[0], w[0], 1e-4, 1e-4}, {"dk", g[1], w[1], 1e-4, 1e-4}, {"dv", g[2], w[2], 1e-5, 1e-4}}
		}},
		{"adamw", func() []result {
			n := N * C
			cfg := AdamWConfig{LR: 3e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
			p, m, v := randSlice(r, n, 1), randSlice(r, n, 0.01), randSlice(r, n, 1e-4)
			for i := range v {
				v[i] = float32(math.Abs(float64(v[i])))
			}
			g := randSlice(r, n, 0.1)
			wp, wm, wv := clone(p), clone(m), clone(v)
			for step := 3; step <= 5; step++ {
				AdamWUpdate(p, m, v, g, n, cfg, step)
				naiveAdamW(wp, wm, wv, g, n, cfg, step)
			}
			return []result{{"params", p, wp, 1e-6, 1e-5}, {"m", m, wm, 1e-8, 1e-5}, {"v", v, wv, 1e-10, 1e-5}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, res := range c.run() {
				assertClose(t, res.name, res.got, res.want, res.atol, res.rtol)
			}
		})
	}
}

func TestCrossEntropyHandComputed(t *testing.T) {
	// Row 0: logits (0, ln 3) → p = (1/4, 3/4), target 1: loss -ln(3/4).
	// Row 1: ignored. Row 2: logits (ln 2, 0), target 0: p0 = 2/3, loss -ln(2/3).
	logits := []float32{0, float32(math.Log(3)), 5, 5, float32(math.Log(2)), 0}
	targets := []int32{1, -1, 0}
	losses, lse := make([]float32, 3), make([]float32, 3)
	mean, count := CrossEntropyForward(losses, lse, logits, targets, 3, 2)
	want := (-math.Log(0.75) - math.Log(2.0/3)) / 2
	if count != 2 || math.Abs(float64(mean)-want) > 1e-6 {
		t.Fatalf("mean, count = %v, %d; want %v, 2", mean, count, want)
	}
	if losses[1] != 0 {
		t.Errorf("ignored row loss = %v, want 0", losses[1])
	}
	d := make([]float32, 6)
	CrossEntropyBackward(d, 1, logits, lse, targets, 3, 2)
	wantD := []float32{0.25 / 2, -0.25 / 2, 0, 0, -1.0 / 3 / 2, 1.0 / 3 / 2}
	assertClose(t, "dlogits", d, wantD, 1e-6, 0)

	// Entropy of (1/4, 3/4) = -(1/4 ln 1/4 + 3/4 ln 3/4).
	ent := make([]float32, 1)
	EntropyForward(ent, lse[:1], logits[:2], 1, 2, 1)
	if h := -(0.25*math.Log(0.25) + 0.75*math.Log(0.75)); math.Abs(float64(ent[0])-h) > 1e-6 {
		t.Errorf("entropy = %v, want %v", ent[0], h)
	}
	// Log-prob at temperature 2: softmax((0, ln3)/2) = (1, √3)/(1+√3).
	lp := make([]float32, 1)
	LogProbsForward(lp, lse[:1], logits[:2], []int32{1}, 1, 2, 2)
	if w := math.Log(math.Sqrt(3) / (1 + math.Sqrt(3))); math.Abs(float64(lp[0])-w) > 1e-6 {
		t.Errorf("logp(T=2) = %v, want %v", lp[0], w)
	}
}

func TestRopeHandComputed(t *testing.T) {
	// HS = 4, theta = 10000: inv_freq = (1, 1/100). rotate_half pairs
	// element i with i+2 (not neighbours): at position 1,
	// out = (x0 cos1 - x2 sin1, x1 cos.01 - x3 sin.01, x2 cos1 + x0 sin1, x3 cos.01 + x1 sin.01).
	x := []float32{1, 2, 3, 4}
	out := make([]float32, 4)
	RopeForward(out, x, []int32{1}, 1, 1, 4, 10000)
	c1, s1 := math.Cos(1), math.Sin(1)
	c2, s2 := math.Cos(0.01), math.Sin(0.01)
	want := []float32{float32(c1 - 3*s1), float32(2*c2 - 4*s2), float32(3*c1 + s1), float32(4*c2 + 2*s2)}
	assertClose(t, "rope", out, want, 1e-6, 1e-6)
	// Position 0 is the identity.
	RopeForward(out, x, []int32{0}, 1, 1, 4, 10000)
	assertClose(t, "rope@0", out, x, 0, 0)
}

func TestAdamWHandComputed(t *testing.T) {
	// Step 1 from zero moments: m̂ = g, v̂ = g², so the update is
	// p·(1 - lr·wd) - lr·g/(|g| + eps).
	cfg := AdamWConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.5}
	p, m, v := []float32{1, -2}, []float32{0, 0}, []float32{0, 0}
	AdamWUpdate(p, m, v, []float32{0.5, -4}, 2, cfg, 1)
	want := []float32{1*0.95 - 0.1, -2*0.95 + 0.1}
	assertClose(t, "params", p, want, 1e-6, 1e-6)
	assertClose(t, "m", m, []float32{0.05, -0.4}, 1e-7, 1e-6)
	// 1-β2 = 1-0.999 is only exact to 1.3e-5 relative in float32.
	assertClose(t, "v", v, []float32{0.00025, 0.016}, 1e-9, 1e-4)
}

func TestGradNormAndScale(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, n := range []int{0, 1, 17, reduceChunk + 5, sizes(3*reduceChunk, 40*reduceChunk+123)} {
		g := randSlice(r, n, 1)
		var s float64
		for _, x := range g {
			s += float64(x) * float64(x)
		}
		got := GradNorm(g)
		if math.Abs(got-math.Sqrt(s)) > 1e-9*math.Max(1, math.Sqrt(s)) {
			t.Errorf("n=%d: GradNorm = %v, want %v", n, got, math.Sqrt(s))
		}
		want := clone(g)
		for i := range want {
			want[i] *= 0.5
		}
		Scale(g, 0.5)
		assertClose(t, "scale", g, want, 0, 0)
	}
	if n := GradNorm([]float32{3, 4}); n != 5 {
		t.Errorf("GradNorm(3,4) = %v", n)
	}
}

// TestGradNormChunkOrder: GradNorm is bit for bit each reduceChunk chunk
// summed in order, then the chunks in order (what sumSquares4's four
// chains side by side must keep), at any thread count.
func TestGradNormChunkOrder(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, n := range []int{3 * reduceChunk, 4 * reduceChunk, 9*reduceChunk + 7, 17 * reduceChunk} {
		g := randSlice(r, n, 1)
		var total float64
		for c := 0; c < n; c += reduceChunk {
			var s float64
			for _, x := range g[c:min(n, c+reduceChunk)] {
				s += float64(x) * float64(x)
			}
			total += s
		}
		want := math.Sqrt(total)
		for _, procs := range []int{1, 2, 3} {
			runtime.GOMAXPROCS(procs)
			if got := GradNorm(g); got != want {
				t.Errorf("n=%d GOMAXPROCS=%d: GradNorm = %v, want %v (chunk order)", n, procs, got, want)
			}
		}
	}
}

func TestArgmax(t *testing.T) {
	cases := []struct {
		name string
		row  []float32
		want int
	}{
		{"empty", nil, -1},
		{"single", []float32{-3}, 0},
		{"tie-first", []float32{1, 5, 5, 2}, 1},
		{"negative", []float32{-5, -1, -3}, 1},
	}
	for _, c := range cases {
		if got := Argmax(c.row); got != c.want {
			t.Errorf("%s: Argmax = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestDeterministicAcrossThreads runs every parallel kernel at several
// GOMAXPROCS values and on every kernel set this CPU has, and requires
// identical bytes.
func TestDeterministicAcrossThreads(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	B, T, NH, NKV, HS := 2, 24, 4, 2, 16
	C, V, OC := NH*HS, 300, 96
	N := B * T
	x, w, wo := randSlice(r, N*C, 1), randSlice(r, C, 1), randSlice(r, OC*C, 1)
	q, k, v := randSlice(r, N*NH*HS, 1), randSlice(r, N*NKV*HS, 1), randSlice(r, N*NKV*HS, 1)
	logits := randSlice(r, N*V, 4)
	tok := make([]int32, N)
	pos := make([]int32, N)
	for i := range tok {
		tok[i] = int32(r.Intn(5)) // many repeats
		pos[i] = int32(i % T)
	}
	g := randSlice(r, 5*reduceChunk+7, 1)
	run := func() [][]float32 {
		var res [][]float32
		add := func(xs ...[]float32) { res = append(res, xs...) }
		out, rstd, dx, dw := make([]float32, N*C), make([]float32, N), make([]float32, N*C), make([]float32, C)
		RMSNormForward(out, rstd, x, w, N, C, 1e-5)
		RMSNormBackward(dx, dw, out, x, w, rstd, N, C)
		add(out, rstd, dx, dw)
		mo, di, dwo, db := make([]float32, N*OC), make([]float32, N*C), make([]float32, OC*C), make([]float32, OC)
		MatmulForward(mo, x, wo, nil, N, C, OC)
		MatmulBackward(di, dwo, db, mo, x, wo, N, C, OC)
		add(mo, di, dwo, db)
		dwte := make([]float32, 5*C)
		EmbeddingBackward(dwte, x, tok, N, C)
		add(dwte)
		ro, dro := make([]float32, len(q)), make([]float32, len(q))
		RopeForward(ro, q, pos, N, NH, HS, 10000)
		RopeBackward(dro, ro, pos, N, NH, HS, 10000)
		add(ro, dro)
		ao, al := make([]float32, len(q)), make([]float32, B*NH*T)
		dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
		AttentionForward(ao, al, q, k, v, nil, B, T, NH, NKV, HS)
		AttentionBackward(dq, dk, dv, ao, q, k, v, ao, al, nil, B, T, NH, NKV, HS)
		add(ao, al, dq, dk, dv)
		lp, lse, dl := make([]float32, N), make([]float32, N), make([]float32, N*V)
		LogProbsForward(lp, lse, logits, tok, N, V, 1)
		LogProbsBackward(dl, lp, logits, lse, tok, N, V, 1)
		ent := make([]float32, N)
		EntropyForward(ent, lse, logits, N, V, 1)
		EntropyBackward(dl, ent, logits, lse, ent, N, V, 1)
		add(lp, lse, dl, ent)
		add([]float32{float32(GradNorm(g))})
		return res
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(1)
	ref := run()
	for _, level := range biLevels() {
		useSet(t, level)
		for _, procs := range []int{1, 2, 3, 8} {
			runtime.GOMAXPROCS(procs)
			got := run()
			for i := range ref {
				if !slices.Equal(bits(got[i]), bits(ref[i])) {
					t.Errorf("%s GOMAXPROCS=%d: output %d differs from %s GOMAXPROCS=1", biLevelName[level], procs, i, biLevelName[biDetectedLevel])
				}
			}
		}
	}
}

func bits(x []float32) []uint32 {
	b := make([]uint32, len(x))
	for i, v := range x {
		b[i] = math.Float32bits(v)
	}
	return b
}

// BenchmarkLogProbs times LogProbsForward + LogProbsBackward on the
// lm-head output of B·T = 256 rows of a 50257 vocabulary (two exp passes
// over 12.9M logits), the row-wise work that sits next to the lm-head
// matmul in an RL step.
func BenchmarkLogProbs(b *testing.B) {
	const N, V = 256, 50257
	r := rand.New(rand.NewSource(1))
	logits := randSlice(r, N*V, 5)
	targets := make([]int32, N)
	for i := range targets {
		targets[i] = int32(r.Intn(V))
	}
	logp, lse, dlogp, dlogits := make([]float32, N), make([]float32, N), randSlice(r, N, 1), make([]float32, N*V)
	b.ResetTimer()
	c0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		LogProbsForward(logp, lse, logits, targets, N, V, 1)
		LogProbsBackward(dlogits, dlogp, logits, lse, targets, N, V, 1)
	}
	if cpu := cpuSeconds() - c0; cpu > 0 {
		b.ReportMetric(cpu/float64(b.N)*1e3, "cpu-ms/op")
	}
}

// BenchmarkLayerOps times forward + backward of the non-matmul kernels of
// one layer of benchmark shape b of issue 3 (batch 8 × seq 128, hidden 256,
// 8 heads of 32, MLP 704), reporting CPU-ms per op as well as wall time.
func BenchmarkLayerOps(b *testing.B) {
	const B, T, NH, HS, I = 8, 128, 8, 32, 704
	const C, N = NH * HS, B * T
	r := rand.New(rand.NewSource(1))
	x, w, dout := randSlice(r, N*C, 1), randSlice(r, C, 1), randSlice(r, N*C, 1)
	q, k, v := randSlice(r, N*C, 1), randSlice(r, N*C, 1), randSlice(r, N*C, 1)
	g, u, dm := randSlice(r, N*I, 2), randSlice(r, N*I, 1), randSlice(r, N*I, 1)
	pos := make([]int32, N)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	out, rstd, dx, dw := make([]float32, N*C), make([]float32, N), make([]float32, N*C), make([]float32, C)
	lse, dq, dk, dv := make([]float32, B*NH*T), make([]float32, N*C), make([]float32, N*C), make([]float32, N*C)
	m, dg, du := make([]float32, N*I), make([]float32, N*I), make([]float32, N*I)
	ops := []struct {
		name string
		f    func()
	}{
		{"rmsnorm", func() {
			RMSNormForward(out, rstd, x, w, N, C, 1e-6)
			RMSNormBackward(dx, dw, dout, x, w, rstd, N, C)
		}},
		{"rope_q", func() {
			RopeForward(out, q, pos, N, NH, HS, 10000)
			RopeBackward(dx, dout, pos, N, NH, HS, 10000)
		}},
		{"attention", func() {
			AttentionForward(out, lse, q, k, v, nil, B, T, NH, NH, HS)
			AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, nil, B, T, NH, NH, HS)
		}},
		{"swiglu", func() {
			SwiGLUForward(m, g, u, N*I)
			SwiGLUBackward(dg, du, dm, g, u, N*I)
		}},
		{"residual", func() {
			ResidualForward(out, x, dout, N*C)
			ResidualBackward(dx, dq, dout, N*C)
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			c0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				op.f()
			}
			if cpu := cpuSeconds() - c0; cpu > 0 {
				b.ReportMetric(cpu/float64(b.N)*1e3, "cpu-ms/op")
			}
		})
	}
}
