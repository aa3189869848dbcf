package jobs

import (
	"path/filepath"
	"testing"
)

// shardMetricJob writes 200,000 values of widely varying magnitude through
// a sharded exec (one Parquet file per shard) and logs their mean and
// standard deviation: merging the shards' partial aggregates in another
// order changes the last bits of both.
const shardMetricJob = `CREATE OR REPLACE TABLE t AS
SELECT 'p' || i AS prompt_id, (hash(i) % 1000003) * pow(10, (i % 7) - 3) / 7.0 AS v FROM range(200000) r(i);
CALL exec(input := 't', command := 'cp "$RLJOB_INPUT" "$RLJOB_OUTPUT"', output := 'vals');
CALL log_metrics(query := 'SELECT ''sd'' AS name, stddev_samp(v) AS value FROM this_step_vals UNION ALL SELECT ''mean'', avg(v) FROM this_step_vals');
`

// TestShardedMetricsDeterministic: the same 2-shard job run into several
// lakes logs bit-identical metrics, equal to the value one thread computes
// over the shard files in order (log_metrics runs single-threaded).
func TestShardedMetricsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: four 2-shard runs over 200,000 rows")
	}
	job := writeJob(t, shardMetricJob)
	var want []string
	for k := 0; k < 4; k++ {
		lake := t.TempDir()
		if err := runShards(t, runOpts(job, lake), 2); err != nil {
			t.Fatal(err)
		}
		got := query(t, lake, "SELECT name, CAST(value AS VARCHAR) FROM metrics ORDER BY name")
		files := "['" + filepath.Join(lake, "vals/run=r/step=0/part-1-0/part-1-0.parquet") + "', '" + filepath.Join(lake, "vals/run=r/step=0/part-1-1/part-1-1.parquet") + "']"
		ref := query(t, lake, "SET threads = 1; SELECT 'mean', CAST(avg(v) AS VARCHAR) FROM read_parquet("+files+") UNION ALL SELECT 'sd', CAST(stddev_samp(v) AS VARCHAR) FROM read_parquet("+files+") ORDER BY 1")
		if len(got) != 2 || got[0] != ref[0] || got[1] != ref[1] {
			t.Fatalf("run %d: metrics %q, one thread over the shard files in order gives %q", k, got, ref)
		}
		if want == nil {
			want = got
		} else if got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("run %d: metrics %q, run 0 logged %q", k, got, want)
		}
	}
}
