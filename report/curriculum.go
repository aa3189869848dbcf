package report

import (
	"context"
	stdsql "database/sql"
	"fmt"

	rsql "github.com/rljob/rljob/sql"
)

// CurriculumBins are the rows of a curriculum chart: where a prompt's pass
// rate within the step that chose it (correct samples / samples, the GRPO
// group's success rate) falls. The two ends are the groups that carry no
// signal for group-normalised advantages (DAPO's dynamic sampling drops them).
var CurriculumBins = []string{"0 (all wrong)", "(0, 1/4]", "(1/4, 1/2]", "(1/2, 3/4]", "(3/4, 1)", "1 (all right)"}

// curriculumQuery computes, per run and step, the share of the step's
// train prompts in each CurriculumBins bin, from %s (trainedScored's rows).
const curriculumQuery = `WITH g AS (
    SELECT run, step, prompt_id, count_if(correct) / count(*) AS pass_rate
    FROM %s WHERE run IN %s AND tag = 'train'
    GROUP BY run, step, prompt_id
), b AS (
    SELECT run, step,
           CASE WHEN pass_rate = 0 THEN 0 WHEN pass_rate <= 0.25 THEN 1 WHEN pass_rate <= 0.5 THEN 2
                WHEN pass_rate <= 0.75 THEN 3 WHEN pass_rate < 1 THEN 4 ELSE 5 END AS bin
    FROM g
)
SELECT run, step, bin, count(*) / sum(count(*)) OVER (PARTITION BY run, step) AS share
FROM b GROUP BY run, step, bin ORDER BY run, step, bin`

// curriculumCharts draws one heat map per run (heat maps do not overlay):
// x = step, y = CurriculumBins, colour = share of the step's train prompts.
// Its series are one per bin, with a share for every step of the run.
func curriculumCharts(ctx context.Context, eng *rsql.Engine, src string, runs []string) ([]*Chart, error) {
	type cell struct {
		step int64
		bin  int
	}
	shares := map[string]map[cell]float64{}
	stepsOf := map[string][]int64{}
	err := query(ctx, eng, "curriculum", fmt.Sprintf(curriculumQuery, src, runList(runs)), func(r *stdsql.Rows) error {
		var run string
		var c cell
		var v float64
		if err := r.Scan(&run, &c.step, &c.bin, &v); err != nil {
			return err
		}
		if shares[run] == nil {
			shares[run] = map[cell]float64{}
		}
		shares[run][c] = v
		if st := stepsOf[run]; len(st) == 0 || st[len(st)-1] != c.step {
			stepsOf[run] = append(st, c.step)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var charts []*Chart
	ids := map[string]bool{}
	for i, run := range runs {
		id := "curriculum-" + slug(run)
		if ids[id] {
			id = fmt.Sprintf("curriculum-%d", i+1)
		}
		ids[id] = true
		c := &Chart{ID: id, Kind: KindHeatmap, Title: "Curriculum, run " + run + ": pass rate of the chosen prompts within their step",
			XLabel: "step", YLabel: "pass rate in step"}
		st := stepsOf[run]
		if len(st) == 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("no data for run %s (no train-tagged rows in scored)", run))
		}
		for b, name := range CurriculumBins {
			if len(st) == 0 {
				break
			}
			s := Series{Run: run, Name: name}
			for _, step := range st {
				s.X = append(s.X, float64(step))
				s.Y = append(s.Y, shares[run][cell{step, b}])
			}
			c.Series = append(c.Series, s)
		}
		charts = append(charts, c)
	}
	return charts, nil
}
