package arrowio

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchRows is the size of the write benchmark (issue 2: 1M rollout rows).
const benchRows = 1_000_000

// BenchmarkGenerateRollouts measures SyntheticRollouts alone, to subtract
// from BenchmarkWriteRollouts.
func BenchmarkGenerateRollouts(b *testing.B) {
	for b.Loop() {
		rr := SyntheticRollouts(benchRows, 1)
		for rr.Next() {
		}
		rr.Release()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteRollouts writes 1M synthetic rollout rows (generated as they
// stream) to one zstd Parquet file through WriteParquet, and reports rows/s
// and the file size.
func BenchmarkWriteRollouts(b *testing.B) {
	dir := b.TempDir()
	var size int64
	start := time.Now()
	for b.Loop() {
		path := filepath.Join(dir, "rollouts.parquet")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		rr := SyntheticRollouts(benchRows, 1)
		n, err := WriteParquet(bw, nil, rr)
		rr.Release()
		if err == nil {
			err = bw.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		if n != benchRows {
			b.Fatalf("wrote %d rows, want %d", n, benchRows)
		}
		st, _ := os.Stat(path)
		size = st.Size()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/time.Since(start).Seconds(), "rows/s")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}
