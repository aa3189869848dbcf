package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// grpoShapedJob is examples/arith/grpo.sql without a model: the batch
// selection through prompt_stats, a save of 256 rollouts in place of
// rollout, reward and log_metrics. Its calls are statements 1, 2 and 3, as
// in arrowio.GenerateHistory.
const grpoShapedJob = `CREATE OR REPLACE TABLE batch AS
SELECT p.* FROM prompts p
LEFT JOIN prompt_stats s USING (prompt_id)
WHERE p.split = 'train' AND coalesce(s.pass_rate, 0.5) BETWEEN 0.05 AND 0.95
ORDER BY hash(p.prompt_id, getvariable('step'))
LIMIT 32;

CALL save(query := 'SELECT b.prompt_id || ''-'' || s.i AS rollout_id, b.prompt_id, s.i::INTEGER AS sample_idx,
    getvariable(''step'') AS policy_step, b.prompt,
    CASE WHEN hash(b.prompt_id, s.i, getvariable(''step'')) % 2 = 0 THEN ''42'' ELSE ''41'' END AS completion,
    ''stop'' AS finish_reason, ''train'' AS tag, b.answer, b.task
  FROM batch b, range(8) s(i) ORDER BY rollout_id', output := 'rollouts');

CALL reward(verifier := 'exact');

CALL log_metrics(query := 'SELECT ''train/reward_mean'' AS name, avg(reward) AS value FROM this_step_scored');
`

// TestHistoryFormats: arrowio.GenerateHistory writes call records and step
// markers in the runner's formats (one schema for both, in arrowio).
func TestHistoryFormats(t *testing.T) {
	// A generated history is one the runner resumes after, running the
	// grpo-shaped job (whose statements are the generator's calls).
	ctx := context.Background()
	dir := t.TempDir()
	job := filepath.Join(dir, "grpo_shaped.sql")
	if err := os.WriteFile(job, []byte(grpoShapedJob), 0o666); err != nil {
		t.Fatal(err)
	}
	lake, err := arrowio.OpenLake(filepath.Join(dir, "lake"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lake.GenerateHistory(arrowio.HistoryOptions{Run: "r", Steps: 3, PerStep: 16}); err != nil {
		t.Fatal(err)
	}
	if _, problems, err := lake.Verify(); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v %v", problems, err)
	}
	res, err := Run(ctx, runOpts(job, lake.Root))
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstStep != 3 || res.Steps != 1 {
		t.Fatalf("first step %d, %d steps; want step 3 run after the history", res.FirstStep, res.Steps)
	}
}

// benchSizes are the history lengths of BenchmarkStepOverhead; set
// RLJOB_BENCH_STEPS=10,1000,10000 for the full range (10,000 steps
// write ~1 GB and take minutes to generate).
func benchSizes(b *testing.B) []int64 {
	v := os.Getenv("RLJOB_BENCH_STEPS")
	if v == "" {
		return []int64{10, 1000}
	}
	var out []int64
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("RLJOB_BENCH_STEPS=%q: want a comma-separated list of step counts", v)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkStepOverhead measures the lake overhead of one grpo.sql-shaped
// step (grpoShapedJob: everything but rollout and train compute) after a
// history of N steps of 256 rollouts (arrowio.GenerateHistory, written
// before timing). Each iteration is one `rljob run --steps 4` in process
// (jobs.Run: open the engine, read and verify the markers, run 4 steps,
// committing each):
//
//   - ms/step: the mean wall time of steps 2-4 of the invocation, the cost
//     of a step in a running job (the engine, its views and caches open);
//   - ms/start: the invocation's time outside its steps (opening the
//     engine, reading and verifying every step marker, the job file), paid
//     once per invocation: a cron-driven `--steps 1` pays ms/start plus
//     the first step's time;
//   - gen_s: the time the history took to write.
//
// compacted=true runs rljob lake compact (sql.CompactLake) on the history
// first (segments and prompt summaries); the runner's automatic compaction
// is off, so the steps the benchmark adds stay uncompacted.
func BenchmarkStepOverhead(b *testing.B) {
	for _, n := range benchSizes(b) {
		for _, compacted := range []bool{false, true} {
			b.Run(fmt.Sprintf("N=%d/compacted=%v", n, compacted), func(b *testing.B) {
				if n > 1000 && !compacted {
					b.Skip("uncompacted, a step over more than 1,000 steps of history takes minutes (docs/benchmarks.md quotes one CLI run at N = 10,000)")
				}
				ctx := context.Background()
				dir := b.TempDir()
				job := filepath.Join(dir, "grpo_shaped.sql")
				if err := os.WriteFile(job, []byte(grpoShapedJob), 0o666); err != nil {
					b.Fatal(err)
				}
				lake, err := arrowio.OpenLake(filepath.Join(dir, "lake"))
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := lake.GenerateHistory(arrowio.HistoryOptions{Run: "bench", Steps: n}); err != nil {
					b.Fatal(err)
				}
				gen := time.Since(t0)
				o := Options{JobFile: job, Lake: lake.Root, Run: "bench", Steps: 1, Log: zerolog.Nop()}
				const steps = 4
				// One untimed step warms the page cache and DuckDB's extension loading.
				if _, err := Run(ctx, o); err != nil {
					b.Fatal(err)
				}
				if err := benchPrepare(lake, compacted); err != nil {
					b.Fatal(err)
				}
				o.Steps = steps
				var inSteps, steady time.Duration
				for b.Loop() {
					res, err := Run(ctx, o)
					if err != nil || res.Steps != steps {
						b.Fatalf("%v, %+v", err, res)
					}
					for i, d := range res.StepTimes {
						inSteps += d
						if i > 0 {
							steady += d
						}
					}
				}
				b.ReportMetric(float64(steady.Microseconds())/1e3/float64(b.N*(steps-1)), "ms/step")
				b.ReportMetric(float64((b.Elapsed()-inSteps).Microseconds())/1e3/float64(b.N), "ms/start")
				b.ReportMetric(gen.Seconds(), "gen_s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// benchPrepare is the lake maintenance a long run does between steps
// (rljob lake compact), applied before timing when compacted.
func benchPrepare(l *arrowio.Lake, compacted bool) error {
	if !compacted {
		return nil
	}
	_, err := rsql.CompactLake(context.Background(), l.Root, rsql.CompactOptions{})
	return err
}
