//go:build cuda && cgo

package trainer

import (
	"math"
	"slices"

	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/kernels/cuda"
)

// The CUDA backend's sampler decode (KV cache, attention decode, the pick)
// and optimizer. In this version the KV caches and the AdamW moments stay
// on the host, as the model's other tensors: each call uploads what its
// kernel reads (a row's cache prefix, the moments) and downloads what it
// writes (docs/cuda.md, "Next: device residency").

// hostKV is the CUDA backend's KVCache: one sequence's keys and values at
// one layer on the host, positions in order, each position's NKV·HS
// floats as the decode kernel reads them ((T, NKV, HS) per sequence).
type hostKV struct {
	nkv, hs, n int
	k, v       []float32
}

func (c *hostKV) Len() int { return c.n }

func (c *hostKV) Append(k, v []float32) {
	d := c.nkv * c.hs
	c.k, c.v = append(c.k, k[:d]...), append(c.v, v[:d]...)
	c.n++
}

func (c *hostKV) CopyPrefix(src KVCache, n int) {
	s, d := src.(*hostKV), c.nkv*c.hs
	c.k, c.v = append(c.k[:0], s.k[:n*d]...), append(c.v[:0], s.v[:n*d]...)
	c.n = n
}

func (b *cudaBackend) NewKVCache(NKV, HS, capacity int) KVCache {
	return &hostKV{nkv: NKV, hs: HS, k: make([]float32, 0, capacity*NKV*HS), v: make([]float32, 0, capacity*NKV*HS)}
}

// AttentionDecode gathers each row's cache prefix into (R, Tmax, NKV, HS)
// (Tmax the longest), uploads it and runs Device.AttentionDecode (kernels'
// AttentionDecodeBI per row: the same bits).
func (b *cudaBackend) AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int) {
	R := len(caches)
	if R == 0 {
		return
	}
	defer b.enter()()
	c0 := caches[0].(*hostKV)
	NKV, HS := c0.nkv, c0.hs
	kvd, qd := NKV*HS, NH*HS
	Tmax := 1
	for _, n := range lens[:R] {
		Tmax = max(Tmax, int(n))
	}
	b.kvk = slices.Grow(b.kvk[:0], R*Tmax*kvd)[:R*Tmax*kvd]
	b.kvv = slices.Grow(b.kvv[:0], R*Tmax*kvd)[:R*Tmax*kvd]
	for i, kc := range caches {
		c, n := kc.(*hostKV), int(lens[i])
		copy(b.kvk[i*Tmax*kvd:], c.k[:n*kvd])
		copy(b.kvv[i*Tmax*kvd:], c.v[:n*kvd])
	}
	o := b.out("out", R*qd)
	b.must(b.d.AttentionDecode(o, b.in("q", q[:R*qd]), b.in("kc", b.kvk), b.in("vc", b.kvv), b.ints("lens", lens[:R]),
		R, Tmax, NH, NKV, HS))
	b.get(out[:R*qd], o)
}

// Sample is Device.Sample: pickRow's token and log-probability for the
// same draws u.
func (b *cudaBackend) Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64) {
	if N <= 0 {
		return
	}
	defer b.enter()()
	t, lp := b.stage("sample tok", cuda.I32, N), b.out("sample logp", N)
	b.must(b.d.Sample(t, lp, b.in("logits", logits[:(N-1)*ld+V]), ld, N, V, u, cuda.SampleParams{Temp: temp, TopK: topK, TopP: topP}))
	b.must(b.d.DownloadInt32(tok[:N], t))
	b.get(logp[:N], lp)
}

// AdamWStep uploads one tensor's parameters, moments and gradients, runs
// Device.AdamWStep and downloads what it changed (the moments stay host
// slices, so checkpoints read them as before).
func (b *cudaBackend) AdamWStep(params, m, v, grads []float32, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	n := len(params)
	if n == 0 {
		return
	}
	defer b.enter()()
	p, gm, gv, g := b.in("adamw params", params), b.in("adamw m", m[:n]), b.in("adamw v", v[:n]), b.in("adamw grads", grads[:n])
	b.must(b.d.AdamWStep(p, gm, gv, g, n, gradScale, cfg, t, zeroGrads))
	b.get(params, p)
	b.get(m[:n], gm)
	b.get(v[:n], gv)
	if zeroGrads {
		b.get(grads[:n], g)
	}
}

// GradNorm is Device.GradNorm (kernels.GradNorm's chunks and order); NaN
// when the device fails (Err says why).
func (b *cudaBackend) GradNorm(g []float32) (norm float64) {
	if len(g) == 0 {
		return 0
	}
	defer b.enter()()
	norm = math.NaN()
	nv, err := b.d.GradNorm(b.in("grad norm", g), len(g))
	b.must(err)
	return nv
}
