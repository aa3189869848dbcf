package kernels

import (
	"math/rand"
	"os"
	"strconv"
	"testing"
)

// BenchmarkAttentionQwen times one layer's attention forward and backward
// at the 0.5B training shape (2 sequences of 256 tokens, 14 heads over 2
// KV heads of 64), reporting CPU-ms per forward + backward.
// RLJOB_BENCH_T=1024 times another sequence length (real RL sequences are
// 512–1024 tokens).
//
//	go test -tags duckdb_arrow -run '^$' -bench AttentionQwen ./kernels/
//	RLJOB_BENCH_T=1024 go test -tags duckdb_arrow -run '^$' -bench AttentionQwen -benchtime 5x ./kernels/
func BenchmarkAttentionQwen(b *testing.B) {
	const B, NH, NKV, HS = 2, 14, 2, 64
	T := benchT(b)
	N := B * T
	r := rand.New(rand.NewSource(1))
	q, k, v := randSlice(r, N*NH*HS, 1), randSlice(r, N*NKV*HS, 1), randSlice(r, N*NKV*HS, 1)
	out, dout, lse := make([]float32, N*NH*HS), randSlice(r, N*NH*HS, 1), make([]float32, B*NH*T)
	dq, dk, dv := make([]float32, N*NH*HS), make([]float32, N*NKV*HS), make([]float32, N*NKV*HS)
	c0 := cpuSeconds()
	for b.Loop() {
		AttentionForward(out, lse, q, k, v, nil, B, T, NH, NKV, HS)
		AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, nil, B, T, NH, NKV, HS)
	}
	if cpu := cpuSeconds() - c0; cpu > 0 {
		b.ReportMetric(cpu/float64(b.N)*1e3, "cpu-ms/op")
	}
}

// BenchmarkAttentionDecodeQwen times one layer's attention for one decoded
// token over a KV cache of T keys (RLJOB_BENCH_T, default 256) at the
// 0.5B shape, reporting CPU-µs per token.
//
//	go test -tags duckdb_arrow -run '^$' -bench AttentionDecodeQwen ./kernels/
func BenchmarkAttentionDecodeQwen(b *testing.B) {
	const NH, NKV, HS = 14, 2, 64
	T := benchT(b)
	r := rand.New(rand.NewSource(1))
	kc := NewKVCacheBI(NKV, HS, T)
	for range T {
		kc.Append(randSlice(r, NKV*HS, 1), randSlice(r, NKV*HS, 1))
	}
	q, out, s := randSlice(r, NH*HS, 1), make([]float32, NH*HS), make([]float32, NH*T)
	c0 := cpuSeconds()
	for b.Loop() {
		AttentionDecodeBI(out, q, kc, T, NH, s)
	}
	if cpu := cpuSeconds() - c0; cpu > 0 {
		b.ReportMetric(cpu/float64(b.N)*1e6, "cpu-µs/op")
	}
}

// benchT is RLJOB_BENCH_T, 256 when unset.
func benchT(b *testing.B) int {
	v := os.Getenv("RLJOB_BENCH_T")
	if v == "" {
		return 256
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("RLJOB_BENCH_T=%q: want a positive number of tokens", v)
	}
	return n
}
