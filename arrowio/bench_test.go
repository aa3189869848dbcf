package arrowio

import (
	"bufio"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// benchRows is the size of the write benchmark (issue 2: 1M rollout rows).
const benchRows = 1_000_000

// cpuTime is the process's user+system CPU time: on a shared machine it is
// steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGenerateRollouts measures SyntheticRollouts alone.
func BenchmarkGenerateRollouts(b *testing.B) {
	for b.Loop() {
		rr := SyntheticRollouts(benchRows, 1)
		for rr.Next() {
		}
		rr.Release()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteRollouts writes 1M synthetic rollout rows (SyntheticRollouts,
// generated before the timer starts, 16Ki-row records) to the lake and
// reports rows/s, rows per CPU-second and the file size:
//   - parquet: WriteParquet to a buffered file (what DuckDB's COPY TO does);
//   - commit: Begin, WriteRecords, Commit — the full protocol, with sha256
//     and fsync of the file, the manifest and the folders.
func BenchmarkWriteRollouts(b *testing.B) {
	if testing.Short() {
		b.Skip("-short: writes 1M rows (~350 MiB)")
	}
	rr := SyntheticRollouts(benchRows, 1)
	var recs []arrow.RecordBatch
	for rr.Next() {
		rec := rr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	sch := rr.Schema()
	rr.Release()
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	reader := func() array.RecordReader {
		r, err := array.NewRecordReader(sch, recs)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	report := func(b *testing.B, cpu time.Duration, size int64) {
		rows := float64(benchRows) * float64(b.N)
		b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(rows/cpu.Seconds(), "rows/cpu-s")
		b.ReportMetric(float64(size)/(1<<20), "MiB")
	}

	b.Run("parquet", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "rollouts.parquet")
		var size int64
		var cpu time.Duration
		for b.Loop() {
			c0 := cpuTime()
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			n, err := WriteParquet(bw, nil, reader())
			if err == nil {
				err = bw.Flush()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil || n != benchRows {
				b.Fatalf("wrote %d rows: %v", n, err)
			}
			cpu += cpuTime() - c0
			st, _ := os.Stat(path)
			size = st.Size()
		}
		report(b, cpu, size)
	})

	b.Run("commit", func(b *testing.B) {
		l, err := OpenLake(filepath.Join(b.TempDir(), "lake"))
		if err != nil {
			b.Fatal(err)
		}
		var (
			size int64
			cpu  time.Duration
			step int64
		)
		for b.Loop() {
			c0 := cpuTime()
			s, err := l.Begin(Unit{Table: TableRollouts, Run: "bench", Step: step}, nil)
			if err != nil {
				b.Fatal(err)
			}
			n, err := s.WriteRecords("", nil, reader())
			if err != nil || n != benchRows {
				b.Fatalf("wrote %d rows: %v", n, err)
			}
			m, err := s.Commit()
			if err != nil {
				b.Fatal(err)
			}
			cpu += cpuTime() - c0
			size = m.Bytes()
			step++
		}
		report(b, cpu, size)
	})
}
