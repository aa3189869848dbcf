package report

import (
	"context"
	stdsql "database/sql"
	"sort"

	rsql "github.com/rljob/rljob/sql"
)

// Axes are a run's x axes besides the step, per step of the run (Step,
// increasing): train rollouts seen and their prompt + completion tokens up
// to and including the step, and wall-clock seconds from the run's first
// step start to the step's end (step markers; metrics' created_at where a
// step has no marker). An axis the lake has no data for is left out.
type Axes struct {
	Step     []float64 `json:"step"`
	Rollouts []float64 `json:"rollouts,omitempty"`
	Tokens   []float64 `json:"tokens,omitempty"`
	WallS    []float64 `json:"wall_s,omitempty"`
}

// axisRow is one step's raw counts: train rollouts and tokens in the step,
// and its end time in epoch seconds (NaN-free: has says which are set).
type axisRow struct {
	rollouts, tokens float64
	end              float64
	hasRoll, hasEnd  bool
}

const axesRolloutsQuery = `SELECT run, step, count(*)::DOUBLE,
       sum(coalesce(len(prompt_tokens), 0) + coalesce(len(completion_tokens), 0))::DOUBLE
FROM rollouts WHERE run IN %s AND tag = 'train' GROUP BY run, step`

const axesMetricsTimeQuery = `SELECT run, step, epoch(max(created_at)), epoch(min(created_at))
FROM metrics WHERE run IN %s AND created_at IS NOT NULL GROUP BY run, step`

const axesStepsTimeQuery = `SELECT run, step, epoch(max(finished_at)), epoch(min(started_at))
FROM steps WHERE run IN %s AND finished_at IS NOT NULL GROUP BY run, step`

// loadAxes reads the x axes of r's runs.
func (r *Report) loadAxes(ctx context.Context, eng *rsql.Engine) error {
	rows := map[string]map[int64]*axisRow{}
	start := map[string]float64{}
	get := func(run string, step int64) *axisRow {
		if rows[run] == nil {
			rows[run] = map[int64]*axisRow{}
		}
		if rows[run][step] == nil {
			rows[run][step] = &axisRow{}
		}
		return rows[run][step]
	}
	err := query(ctx, eng, "rollouts per step", sprintfRuns(axesRolloutsQuery, r.Runs), func(s *stdsql.Rows) error {
		var run string
		var step int64
		var n, tok float64
		if err := s.Scan(&run, &step, &n, &tok); err != nil {
			return err
		}
		a := get(run, step)
		a.rollouts, a.tokens, a.hasRoll = n, tok, true
		return nil
	})
	if err != nil {
		return err
	}
	times := func(what, q string, override bool) error {
		return query(ctx, eng, what, sprintfRuns(q, r.Runs), func(s *stdsql.Rows) error {
			var run string
			var step int64
			var end, begin float64
			if err := s.Scan(&run, &step, &end, &begin); err != nil {
				return err
			}
			a := get(run, step)
			if override || !a.hasEnd {
				a.end, a.hasEnd = end, true
			}
			if st, ok := start[run]; !ok || begin < st {
				start[run] = begin
			}
			return nil
		})
	}
	if err := times("metric times", axesMetricsTimeQuery, false); err != nil {
		return err
	}
	if ok, err := hasView(ctx, eng, "steps"); err != nil {
		return err
	} else if ok {
		if err := times("step markers", axesStepsTimeQuery, true); err != nil {
			return err
		}
	}
	r.Axes = map[string]*Axes{}
	for _, run := range r.Runs {
		r.Axes[run] = cumulativeAxes(rows[run], start[run])
	}
	return nil
}

// cumulativeAxes turns per-step counts into the Axes of one run.
func cumulativeAxes(rows map[int64]*axisRow, start float64) *Axes {
	steps := make([]int64, 0, len(rows))
	for s := range rows {
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	a := &Axes{Step: []float64{}}
	var roll, tok, wall float64
	anyRoll, anyEnd := false, false
	for _, s := range steps {
		row := rows[s]
		roll += row.rollouts
		tok += row.tokens
		anyRoll = anyRoll || row.hasRoll
		if row.hasEnd {
			wall = max(wall, row.end-start)
			anyEnd = true
		}
		a.Step = append(a.Step, float64(s))
		a.Rollouts = append(a.Rollouts, roll)
		a.Tokens = append(a.Tokens, tok)
		a.WallS = append(a.WallS, wall)
	}
	if !anyRoll {
		a.Rollouts, a.Tokens = nil, nil
	}
	if !anyEnd {
		a.WallS = nil
	}
	return a
}

// hasView reports whether the engine has a view or table called name (the
// steps and calls tables exist only once a job runner wrote them).
func hasView(ctx context.Context, eng *rsql.Engine, name string) (bool, error) {
	n := 0
	err := query(ctx, eng, "catalog", `SELECT count(*) FROM duckdb_views() WHERE view_name = `+rsql.QuoteString(name)+` AND NOT internal`,
		func(s *stdsql.Rows) error { return s.Scan(&n) })
	return n > 0, err
}
