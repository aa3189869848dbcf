package jobs

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
)

// StepsTable is the lake table of step markers. The runner commits one unit
// steps/run=R/step=S/part-0-<shard>/ at the end of every iteration, after
// all of the step's stage units; a step is complete for a shard exactly when
// its marker is committed. Resume starts at one past the last complete step.
//
// Marker file columns (run and step come from the path):
//
//	shard INTEGER, num_shards INTEGER, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
//	job_file VARCHAR, job_sha256 VARCHAR (hex sha256 of the job file), rljob_version VARCHAR
//
// Its manifest records shard, num_shards and job_sha256: step S of a run is
// complete when the markers of all num_shards shards are committed
// (arrowio.ReadStepStatus), and the run resumes at its first incomplete step.
const StepsTable = arrowio.TableSteps

// StepsSchema is the file schema of the steps table.
func StepsSchema() *arrow.Schema { return arrowio.StepsSchema() }

// stepMarker builds the one-row marker record.
func stepMarker(shard, numShards int, started, finished time.Time, jobFile, sha string) array.RecordReader {
	sch := StepsSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	b.Field(0).(*array.Int32Builder).Append(int32(shard))
	b.Field(1).(*array.Int32Builder).Append(int32(numShards))
	b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(started.UTC().UnixMicro()))
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(finished.UTC().UnixMicro()))
	b.Field(4).(*array.StringBuilder).Append(jobFile)
	b.Field(5).(*array.StringBuilder).Append(sha)
	b.Field(6).(*array.StringBuilder).Append(arrowio.Version)
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		panic(err) // schema and record come from the same builder
	}
	return rr
}

// stepUnit is the marker unit of (run, step, shard).
func stepUnit(run string, step int64, shard int) arrowio.Unit {
	return arrowio.Unit{Table: StepsTable, Run: run, Step: step, Call: 0, Shard: shard}
}
