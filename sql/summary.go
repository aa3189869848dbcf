package sql

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rljob/rljob/arrowio"
)

// Prompt summaries (issue 9): prompt_stats folds every train row of a run's
// history, so over a long run it would read the whole history each step.
// Compaction therefore also writes, for each aligned range of complete
// steps, a segment of arrowio.SummaryTable holding one row per prompt with
// train rows in the range:
//
//	run, seg_first  the run and the range's first step
//	prompt_id
//	attempts        scored train rows of the prompt in the range     BIGINT
//	correct         those with correct = true                        BIGINT
//	last_step       the newest step with rows for the prompt         BIGINT
//	n_steps         steps with rows for the prompt (k)               BIGINT
//	ema_part        sum_j 0.5 * 0.5^(k-j) * p_j over those steps,
//	                p_j = correct_j / attempts_j, j = 1..k old to new DOUBLE
//	first_rate      p_1                                              DOUBLE
//
// The EMA of sql/lib/10_prompt_stats.sql (alpha = 0.5) over pieces in step
// order — summaries, then the steps after them one by one, each a piece
// with k = 1, ema_part = 0.5 p, first_rate = p — is
//
//	ema = sum_r ema_part_r * 0.5^(k of the pieces after r) + 0.5^(k of all) * first_rate_1
//
// which expands to the per-step formula (the oldest step weighs 0.5^(m-1),
// the others 0.5 * 0.5^age). So a job's prompt_stats reads at most a few
// dozen summary rows per prompt plus the steps since the last compaction.
// The engine shows the run's summaries covering steps 0..T contiguously,
// T < the snapshot's step, in the view _prompt_summary and sets the
// variables prompt_summary_run = the snapshot's run and
// prompt_summary_through = T (-1 when there are none, and outside a job,
// where prompt_stats pools every run and reads scored alone).

// summaryQuery computes the summary rows of steps first..last of run from
// the engine's scored_all view. Summaries are written only for ranges
// whose rewards come from one verifier (mixedVerifiers), where scored_all
// and scored (whatever train_verifier a job sets) hold the same rows.
func summaryQuery(run string, first, last int64) string {
	return fmt.Sprintf(`WITH per_step AS (
    SELECT prompt_id, step, count(*) AS attempts, count_if(correct) AS correct
    FROM scored_all
    WHERE tag = 'train' AND run = %[1]s AND step BETWEEN %[2]d AND %[3]d
    GROUP BY prompt_id, step
),
aged AS (
    SELECT *,
           row_number() OVER (PARTITION BY prompt_id ORDER BY step DESC) - 1 AS age,
           row_number() OVER (PARTITION BY prompt_id ORDER BY step) AS ord
    FROM per_step
)
SELECT CAST(%[1]s AS VARCHAR) AS run, CAST(%[2]d AS BIGINT) AS seg_first, prompt_id,
       CAST(sum(attempts) AS BIGINT) AS attempts,
       CAST(sum(correct) AS BIGINT) AS correct,
       CAST(max(step) AS BIGINT) AS last_step,
       CAST(count(*) AS BIGINT) AS n_steps,
       sum(0.5 * pow(0.5, age) * correct / attempts) AS ema_part,
       max(CASE WHEN ord = 1 THEN correct / attempts END) AS first_rate
FROM aged
GROUP BY prompt_id
ORDER BY prompt_id`, QuoteString(run), first, last)
}

// summaryEmptySQL is the _prompt_summary view when no summary applies.
const summaryEmptySQL = `SELECT CAST(NULL AS VARCHAR) AS run, CAST(NULL AS BIGINT) AS seg_first,
  CAST(NULL AS VARCHAR) AS prompt_id, CAST(NULL AS BIGINT) AS attempts, CAST(NULL AS BIGINT) AS correct,
  CAST(NULL AS BIGINT) AS last_step, CAST(NULL AS BIGINT) AS n_steps, CAST(NULL AS DOUBLE) AS ema_part,
  CAST(NULL AS DOUBLE) AS first_rate WHERE false`

// SummaryView is the view of the summaries a job's prompt_stats reads.
const SummaryView = "_prompt_summary"

// SummaryThroughVar is the DuckDB variable holding the last step the
// summaries in SummaryView cover (-1: none).
const SummaryThroughVar = "prompt_summary_through"

// SummaryRunVar is the DuckDB variable naming the run of SummaryView's rows
// (the snapshot's; "" without one). prompt_stats uses the summaries only
// when the variable run equals it.
const SummaryRunVar = "prompt_summary_run"

// refreshSummary re-creates SummaryView and SummaryThroughVar for the
// snapshot: the snapshot run's summaries that cover steps 0..T before the
// snapshot's step without a gap.
func (e *Engine) refreshSummary(ctx context.Context) error {
	through, files := int64(-1), []string(nil)
	if e.snap != nil && e.lake != "" {
		l := &arrowio.Lake{Root: e.lake}
		all, err := l.SegmentsCached(arrowio.SummaryTable, e.listCache())
		if err != nil {
			return fmt.Errorf("sql: refresh: %w", err)
		}
		var mine []*arrowio.SegmentManifest
		for _, s := range all {
			if s.Run == e.snap.Run && s.Last < e.snap.Step {
				mine = append(mine, s)
			}
		}
		for _, s := range arrowio.ChooseSegments(mine) {
			if s.First != through+1 {
				break
			}
			files = append(files, s.Path(l))
			through = s.Last
		}
	}
	sel := summaryEmptySQL
	if len(files) > 0 {
		sel = "SELECT * FROM read_parquet(" + fileList(files) + ")"
	}
	if err := e.Exec(ctx, "CREATE OR REPLACE VIEW "+QuoteIdent(SummaryView)+" AS "+sel); err != nil {
		return fmt.Errorf("sql: refresh: %s: %w", SummaryView, err)
	}
	run := ""
	if e.snap != nil {
		run = e.snap.Run
	}
	if err := e.SetVariable(ctx, SummaryRunVar, run); err != nil {
		return err
	}
	return e.SetVariable(ctx, SummaryThroughVar, through)
}

// writeSummaries writes the missing summary segments of run for its
// complete steps below next, for the aligned ranges of arrowio.SegmentSizes,
// largest first (a larger one supersedes the smaller ones inside it, as for
// table segments). It reads scored through an engine on the lake with the
// snapshot of step next, so only committed units count.
func writeSummaries(ctx context.Context, l *arrowio.Lake, run string, next int64, hook func(string)) ([]arrowio.Segment, error) {
	have, err := l.Segments(arrowio.SummaryTable)
	if err != nil {
		return nil, err
	}
	var todo []arrowio.Segment
	for _, size := range arrowio.SegmentSizes {
		for first := int64(0); first+size <= next; first += size {
			seg := arrowio.Segment{Table: arrowio.SummaryTable, Run: run, First: first, Last: first + size - 1}
			covered := false
			for _, s := range have {
				if s.Run == run && s.First <= seg.First && seg.Last <= s.Last {
					covered = true
					break
				}
			}
			for _, s := range todo {
				if s.First <= seg.First && seg.Last <= s.Last {
					covered = true
				}
			}
			if !covered {
				todo = append(todo, seg)
			}
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	e, err := Open(ctx, l.Root)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	e.SetSnapshot(&Snapshot{Run: run, Step: next})
	if err := e.Refresh(ctx); err != nil {
		return nil, err
	}
	var done []arrowio.Segment
	for _, seg := range todo {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		mixed, err := mixedVerifiers(ctx, e, seg)
		if err != nil {
			return done, fmt.Errorf("sql: summarise %s: %w", seg, err)
		}
		if mixed {
			continue // prompt_stats reads these steps from scored, under the job's train_verifier
		}
		ok, err := writeSummary(ctx, e, l, seg, hook)
		if err != nil {
			return done, fmt.Errorf("sql: summarise %s: %w", seg, err)
		}
		if ok {
			done = append(done, seg)
		}
	}
	return done, nil
}

// mixedVerifiers reports whether the rewards of seg's run and steps come
// from more than one verifier: a summary of them would fix which one
// prompt_stats counts, which is the job's choice (train_verifier).
func mixedVerifiers(ctx context.Context, e *Engine, seg arrowio.Segment) (bool, error) {
	var n int64
	q := fmt.Sprintf("SELECT count(DISTINCT verifier) FROM rewards WHERE run = %s AND step BETWEEN %d AND %d", QuoteString(seg.Run), seg.First, seg.Last)
	if err := e.conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, err
	}
	return n > 1, nil
}

// writeSummary commits one summary segment (staging, fsync, manifest,
// rename, as every segment); false when another compaction committed it.
func writeSummary(ctx context.Context, e *Engine, l *arrowio.Lake, seg arrowio.Segment, hook func(string)) (bool, error) {
	st, err := l.BeginSegment(seg)
	if err != nil {
		return false, err
	}
	call := func(p string) {
		if hook != nil {
			hook(p)
		}
	}
	call("begun")
	out := filepath.Join(st.Path(), arrowio.SegmentFile)
	if err := e.Exec(ctx, "COPY ("+summaryQuery(seg.Run, seg.First, seg.Last)+") TO "+QuoteString(out)+" (FORMAT parquet, COMPRESSION zstd)"); err != nil {
		_ = st.Abort()
		return false, err
	}
	call("written")
	if _, err := st.Commit(nil); err != nil {
		if errors.Is(err, arrowio.ErrAlreadyCommitted) {
			return false, nil
		}
		return false, err
	}
	call("committed")
	return true, nil
}

// VerifySummaries recomputes every summary segment of the lake from the
// rows it summarises and reports those that differ (counts exactly, the
// EMA parts to 1e-9): lake verify's check of derived segments, whose files
// arrowio checks like any segment's.
func VerifySummaries(ctx context.Context, root string) ([]arrowio.Problem, error) {
	l := &arrowio.Lake{Root: root}
	segs, err := l.Segments(arrowio.SummaryTable)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	e, err := Open(ctx, root)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	var ps []arrowio.Problem
	for _, s := range segs {
		e.SetSnapshot(&Snapshot{Run: s.Run, Step: s.Last + 1})
		if err := e.Refresh(ctx); err != nil {
			return ps, err
		}
		q := `WITH stored AS (SELECT * FROM read_parquet(` + QuoteString(filepath.ToSlash(s.Path(l))) + `)),
computed AS (` + summaryQuery(s.Run, s.First, s.Last) + `)
SELECT count(*) FROM stored s FULL OUTER JOIN computed c USING (prompt_id)
WHERE s.prompt_id IS NULL OR c.prompt_id IS NULL
   OR s.run IS DISTINCT FROM c.run OR s.seg_first IS DISTINCT FROM c.seg_first
   OR s.attempts IS DISTINCT FROM c.attempts OR s.correct IS DISTINCT FROM c.correct
   OR s.last_step IS DISTINCT FROM c.last_step OR s.n_steps IS DISTINCT FROM c.n_steps
   OR abs(s.ema_part - c.ema_part) > 1e-9 OR abs(s.first_rate - c.first_rate) > 1e-9`
		var bad int64
		if err := e.conn.QueryRowContext(ctx, q).Scan(&bad); err != nil {
			ps = append(ps, arrowio.Problem{Path: s.Dir(), Msg: "cannot recompute the prompt summary: " + firstLine(err.Error()) + ": remove the segment folder"})
			continue
		}
		if bad > 0 {
			ps = append(ps, arrowio.Problem{Path: s.Dir(), Msg: fmt.Sprintf("%d prompt(s) differ from the rows of steps %d-%d it summarises: remove the segment folder (lake compact rewrites it)", bad, s.First, s.Last)})
		}
	}
	return ps, nil
}

// VerifyLake is arrowio's VerifyReport plus VerifySummaries: what lake
// verify runs.
func VerifyLake(ctx context.Context, root string) (*arrowio.Report, error) {
	r, err := (&arrowio.Lake{Root: root}).VerifyReport()
	if err != nil {
		return nil, err
	}
	ps, err := VerifySummaries(ctx, root)
	if err != nil {
		return nil, err
	}
	r.Problems = append(r.Problems, ps...)
	return r, nil
}
