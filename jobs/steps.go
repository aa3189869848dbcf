package jobs

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/arrowio"
)

// StepsTable is the lake table of step markers. The runner commits one unit
// steps/run=R/step=S/part-0-<shard>/ at the end of every iteration, after
// all of the step's stage units and call records. A step is complete when
// the markers of all its shards are committed; a run resumes at its first
// incomplete step.
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

// stepUnit is the marker unit of (run, step, shard).
func stepUnit(run string, step int64, shard int) arrowio.Unit {
	return arrowio.Unit{Table: StepsTable, Run: run, Step: step, Call: 0, Shard: shard}
}
