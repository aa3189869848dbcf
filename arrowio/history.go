package arrowio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// HistoryOptions configure GenerateHistory.
type HistoryOptions struct {
	Run       string
	FirstStep int64 // steps FirstStep .. FirstStep+Steps-1 are written
	Steps     int64
	PerStep   int    // rollouts per step (default 256: 32 prompts x 8 samples)
	Prompts   int    // prompts written at step 0 when FirstStep is 0 (default 1024)
	JobSHA256 string // recorded in the call records and markers
}

// Call indices of the generated history, those of a grpo.sql-shaped job
// (statement 0 selects the batch, 1 saves the rollouts, 2 rewards them, 3
// logs metrics): package jobs' scale benchmark runs such a job after it.
const (
	HistoryCallPrompts  = 0
	HistoryCallRollouts = 1
	HistoryCallRewards  = 2
	HistoryCallMetrics  = 3
)

// GenerateHistory writes a synthetic run history into the lake, without a
// model and without fsyncs (a benchmark fixture, not crash-safe): per step
// PerStep rollouts (SyntheticRollouts: groups of 8 samples of prompts
// p0, p1, ...), their rewards (about 40% correct, varying by prompt and
// step), 4 metrics, a call record per call and the step marker, each a
// committed unit with its manifest as the runner writes them (call records
// and markers in the formats of package jobs: TableCalls, TableSteps; a
// test there checks the schemas). At FirstStep 0 it also writes Prompts
// prompts (p0, ..., split 'train', answer '42') to prompts at step 0.
func (l *Lake) GenerateHistory(o HistoryOptions) error {
	if o.PerStep == 0 {
		o.PerStep = 256
	}
	if o.Prompts == 0 {
		o.Prompts = 1024
	}
	if err := ValidatePartitionValue(o.Run); err != nil {
		return err
	}
	if o.FirstStep == 0 {
		if err := l.directUnit(Unit{Table: TablePrompts, Run: o.Run, Step: 0, Call: HistoryCallPrompts}, nil, historyPrompts(o.Prompts)); err != nil {
			return err
		}
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for step := o.FirstStep; step < o.FirstStep+o.Steps; step++ {
		at := base.Add(time.Duration(step) * time.Second)
		unit := func(table string, call int) Unit { return Unit{Table: table, Run: o.Run, Step: step, Call: call} }
		ro := SyntheticRollouts(o.PerStep, step+1)
		err := l.directUnit(unit(TableRollouts, HistoryCallRollouts), nil, ro)
		ro.Release()
		if err != nil {
			return err
		}
		if err := l.directUnit(unit(TableRewards, HistoryCallRewards), nil, historyRewards(o.PerStep, step)); err != nil {
			return err
		}
		if err := l.directUnit(unit(TableMetrics, HistoryCallMetrics), nil, historyMetrics(at)); err != nil {
			return err
		}
		for call, stage := range map[int]string{HistoryCallRollouts: "save", HistoryCallRewards: "reward", HistoryCallMetrics: "log_metrics"} {
			args := map[string]any{"stage": stage, "status": "done", "num_shards": 1, "job_sha256": o.JobSHA256}
			if err := l.directUnit(unit(TableCalls, call), args, historyCall(call, stage, o.JobSHA256)); err != nil {
				return err
			}
		}
		args := map[string]any{"job_file": "history.sql", "job_sha256": o.JobSHA256, "shard": 0, "num_shards": 1}
		if err := l.directUnit(unit(TableSteps, 0), args, historyMarker(at, o.JobSHA256)); err != nil {
			return err
		}
	}
	return nil
}

// directUnit writes u's one Parquet file and manifest straight into the
// unit folder (no staging, no fsync): for GenerateHistory only.
func (l *Lake) directUnit(u Unit, args map[string]any, rr array.RecordReader) error {
	defer rr.Release()
	dir := l.Path(u.Dir())
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	var buf bytes.Buffer
	rows, err := WriteParquet(&buf, withoutKeys(rr.Schema()), rr)
	if err != nil {
		return fmt.Errorf("arrowio: history %s: %w", u, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if err := os.WriteFile(filepath.Join(dir, u.FileName()), buf.Bytes(), 0o666); err != nil {
		return err
	}
	m := Manifest{Unit: u, RljobVersion: Version, Args: args, CreatedAt: time.Now().UTC(),
		Files: []FileEntry{{Name: u.FileName(), Rows: rows, Bytes: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:])}}}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestName), append(mb, '\n'), 0o666)
}

func oneBatch(sch *arrow.Schema, fill func(b *array.RecordBuilder)) array.RecordReader {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	fill(b)
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		panic(err) // schema and record come from the same builder
	}
	return rr
}

func historyPrompts(n int) array.RecordReader {
	return oneBatch(PromptsSchema(), func(b *array.RecordBuilder) {
		for i := range n {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("p%d", i))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("Question %d: what is 6*7?", i))
			b.Field(2).(*array.StringBuilder).Append("42")
			b.Field(3).(*array.StringBuilder).Append("synthetic")
			b.Field(4).(*array.StringBuilder).Append("train")
		}
	})
}

// historyRewards scores rollouts r0..r<n-1> of a step: prompt g (rows
// 8g..8g+7) is correct with a probability falling with g, varying by step.
func historyRewards(n int, step int64) array.RecordReader {
	return oneBatch(RewardsSchema(), func(b *array.RecordBuilder) {
		for i := range n {
			h := uint64(i)*0x9e3779b97f4a7c15 ^ uint64(step)*0xbf58476d1ce4e5b9
			h ^= h >> 31
			correct := int(h%100) < 80-60*(i/syntheticGroup)/max(1, n/syntheticGroup)
			r := 0.0
			if correct {
				r = 1
			}
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("r%d", i))
			b.Field(1).(*array.StringBuilder).Append("exact")
			b.Field(2).(*array.Float64Builder).Append(r)
			b.Field(3).(*array.BooleanBuilder).Append(correct)
			b.Field(4).(*array.StringBuilder).Append("42")
		}
	})
}

func historyMetrics(at time.Time) array.RecordReader {
	return oneBatch(MetricsSchema(), func(b *array.RecordBuilder) {
		for i, name := range []string{"train/reward_mean", "train/groups_kept", "actor/entropy", "timing_s/step"} {
			b.Field(0).(*array.StringBuilder).Append(name)
			b.Field(1).(*array.Float64Builder).Append(float64(i) + 0.5)
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		}
	})
}

// CallsSchema is the file schema of the calls table (call records, written
// by package jobs; run and step come from the path).
func CallsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "shard", Type: arrow.PrimitiveTypes.Int32},
		{Name: "num_shards", Type: arrow.PrimitiveTypes.Int32},
		{Name: "call", Type: arrow.PrimitiveTypes.Int32},
		{Name: "stage", Type: arrow.BinaryTypes.String},
		{Name: "status", Type: arrow.BinaryTypes.String},
		{Name: "args", Type: arrow.BinaryTypes.String},
		{Name: "rows", Type: arrow.PrimitiveTypes.Int64},
		{Name: "job_sha256", Type: arrow.BinaryTypes.String},
	}, nil)
}

// StepsSchema is the file schema of the steps table (step markers,
// written by package jobs; run and step come from the path).
func StepsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "shard", Type: arrow.PrimitiveTypes.Int32},
		{Name: "num_shards", Type: arrow.PrimitiveTypes.Int32},
		{Name: "started_at", Type: TimestampUTC},
		{Name: "finished_at", Type: TimestampUTC},
		{Name: "job_file", Type: arrow.BinaryTypes.String},
		{Name: "job_sha256", Type: arrow.BinaryTypes.String},
		{Name: "rljob_version", Type: arrow.BinaryTypes.String},
	}, nil)
}

// CallRecord is the one-row record of a call record (CallsSchema); args is
// the evaluated arguments as JSON.
func CallRecord(shard, numShards, call int, stage, status, args string, rows int64, sha string) array.RecordReader {
	return oneBatch(CallsSchema(), func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int32Builder).Append(int32(shard))
		b.Field(1).(*array.Int32Builder).Append(int32(numShards))
		b.Field(2).(*array.Int32Builder).Append(int32(call))
		b.Field(3).(*array.StringBuilder).Append(stage)
		b.Field(4).(*array.StringBuilder).Append(status)
		b.Field(5).(*array.StringBuilder).Append(args)
		b.Field(6).(*array.Int64Builder).Append(rows)
		b.Field(7).(*array.StringBuilder).Append(sha)
	})
}

// MarkerRecord is the one-row record of a step marker (StepsSchema).
func MarkerRecord(shard, numShards int, started, finished time.Time, jobFile, sha string) array.RecordReader {
	return oneBatch(StepsSchema(), func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int32Builder).Append(int32(shard))
		b.Field(1).(*array.Int32Builder).Append(int32(numShards))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(started.UTC().UnixMicro()))
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(finished.UTC().UnixMicro()))
		b.Field(4).(*array.StringBuilder).Append(jobFile)
		b.Field(5).(*array.StringBuilder).Append(sha)
		b.Field(6).(*array.StringBuilder).Append(Version)
	})
}

func historyCall(call int, stage, sha string) array.RecordReader {
	return CallRecord(0, 1, call, stage, "done", "{}", 256, sha)
}

func historyMarker(at time.Time, sha string) array.RecordReader {
	return MarkerRecord(0, 1, at, at.Add(time.Second), "history.sql", sha)
}

// GenerateMarkers writes the step markers of steps first..first+steps-1
// of run (no fsync; a benchmark fixture), completing steps whose units were
// written otherwise.
func (l *Lake) GenerateMarkers(run string, first, steps int64, jobSHA256 string) error {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for step := first; step < first+steps; step++ {
		args := map[string]any{"job_file": "history.sql", "job_sha256": jobSHA256, "shard": 0, "num_shards": 1}
		u := Unit{Table: TableSteps, Run: run, Step: step}
		if err := l.directUnit(u, args, historyMarker(base.Add(time.Duration(step)*time.Second), jobSHA256)); err != nil {
			return err
		}
	}
	return nil
}
