package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// commitSQL commits the rows of a DuckDB query as the unit (table, run,
// step, call 0, shard 0) of lake, through the lake API.
func commitSQL(t *testing.T, ctx context.Context, mem *rsql.Engine, lake *arrowio.Lake, table, run string, step int64, q string) {
	t.Helper()
	rr, err := mem.QueryArrow(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rr.Release()
	st, err := lake.Begin(arrowio.Unit{Table: table, Run: run, Step: step}, map[string]any{"test": true})
	if err != nil {
		t.Fatal(err)
	}
	sch, _ := arrowio.SchemaFor(table) // nil for other tables: the query's schema
	if _, err := st.WriteRecords("", sch, rr); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Known values of the synthetic lake.
const (
	trainSteps = 10 // run a: train steps 1..10
	bSteps     = 5  // run b: steps 1..5, metrics only
)

func entropyA(step int) float64    { return 2 - 0.1*float64(step) }
func entropyB(step int) float64    { return 1.5 + 0.05*float64(step) }
func rewardMeanB(step int) float64 { return 0.1 * float64(step) }

// syntheticLake writes two runs:
//
//	a: steps 1..10, each with 4 train prompts p0..p3 × 4 samples, sample j of
//	   prompt pi correct iff j < i (pass rates 0, 0.25, 0.5, 0.75; mean train
//	   reward 0.375), plus 4 eval-tagged rollouts all correct (which the
//	   reward chart must ignore); metrics actor/{entropy, kl_loss, ppo_kl,
//	   pg_clipfrac, grad_norm}, response_length/mean, train/groups_kept per
//	   step; val/arith/{pass@1, pass@4, policy_step} at steps 0 (checkpoint 0)
//	   and 11 (checkpoint 10).
//	b: steps 1..5, metrics actor/entropy and train/reward_mean only.
func syntheticLake(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "lake")
	lake, err := arrowio.OpenLake(root)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := rsql.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for s := 1; s <= trainSteps; s++ {
		commitSQL(t, ctx, mem, lake, "rollouts", "a", int64(s), fmt.Sprintf(`
SELECT *, (%[1]d - 1)::BIGINT AS policy_step, '1+1=' AS prompt, '2' AS completion, [1, 2]::INTEGER[] AS prompt_tokens,
       [3]::INTEGER[] AS completion_tokens, [-0.5]::FLOAT[] AS logprobs, 'stop' AS finish_reason, 1.0::DOUBLE AS temperature,
       42::BIGINT AS seed, now() AS created_at
FROM (SELECT 's%[1]d-' || p || '-' || j AS rollout_id, 'p' || p AS prompt_id, j::INTEGER AS sample_idx, 'train' AS tag
      FROM range(4) r(p), range(4) q(j)
      UNION ALL SELECT 's%[1]d-e' || j, 'e' || j, 0, 'eval' FROM range(4) q(j))`, s))
		commitSQL(t, ctx, mem, lake, "rewards", "a", int64(s), fmt.Sprintf(`
SELECT *, NULL::VARCHAR AS extracted FROM (
SELECT 's%[1]d-' || p || '-' || j AS rollout_id, 'exact' AS verifier, (j < p)::DOUBLE AS reward, j < p AS correct
FROM range(4) r(p), range(4) q(j)
UNION ALL SELECT 's%[1]d-e' || j, 'exact', 1.0::DOUBLE, true FROM range(4) q(j))`, s))
		commitSQL(t, ctx, mem, lake, "metrics", "a", int64(s), fmt.Sprintf(`
SELECT name, value::DOUBLE AS value, created_at FROM (VALUES ('actor/entropy', %g), ('actor/kl_loss', 0.0), ('actor/ppo_kl', %g),
  ('actor/pg_clipfrac', %g), ('actor/grad_norm', %g), ('response_length/mean', %g),
  ('train/groups_kept', %g)) v(name, value), (SELECT now() AS created_at)`,
			entropyA(s), 0.001*float64(s), 0.01*float64(s), 1/float64(s), 4+float64(s%3), 0.75))
	}
	for i, ck := range []int{0, trainSteps} {
		step := int64([]int{0, trainSteps + 1}[i])
		commitSQL(t, ctx, mem, lake, "metrics", "a", step, fmt.Sprintf(`
SELECT name, value::DOUBLE AS value, created_at FROM (VALUES ('val/arith/pass@1', %g), ('val/arith/pass@4', %g), ('val/arith/policy_step', %d)) v(name, value), (SELECT now() AS created_at)`,
			0.4+0.3*float64(i), 0.7+0.2*float64(i), ck))
	}
	for s := 1; s <= bSteps; s++ {
		commitSQL(t, ctx, mem, lake, "metrics", "b", int64(s), fmt.Sprintf(`
SELECT name, value::DOUBLE AS value, created_at FROM (VALUES ('actor/entropy', %g), ('train/reward_mean', %g)) v(name, value), (SELECT now() AS created_at)`, entropyB(s), rewardMeanB(s)))
	}
	return root
}

func buildReport(t *testing.T, root string, runs ...string) (*Report, error) {
	t.Helper()
	return buildReportPrompts(t, root, runs)
}

func buildReportPrompts(t *testing.T, root string, runs []string, prompts ...string) (*Report, error) {
	t.Helper()
	ctx := context.Background()
	eng, err := rsql.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	return Build(ctx, eng, runs, prompts...)
}

// wantCharts are the chart ids of the synthetic lake's report, in order.
var wantCharts = []string{"reward", "entropy", "kl", "clipfrac", "grad_norm", "response_length", "groups_kept", "eval-arith", "curriculum-a", "curriculum-b"}

func seriesNamed(c *Chart, run, name string) *Series {
	for i := range c.Series {
		if c.Series[i].Run == run && c.Series[i].Name == name {
			return &c.Series[i]
		}
	}
	return nil
}

func steps(from, to int) []float64 {
	var x []float64
	for s := from; s <= to; s++ {
		x = append(x, float64(s))
	}
	return x
}

func near(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}

// checkSeries compares the series (run, name) of chart id with x and y.
func checkSeries(t *testing.T, charts map[string]*Chart, id, run, name string, x, y []float64) {
	t.Helper()
	c := charts[id]
	if c == nil {
		t.Errorf("no chart %s", id)
		return
	}
	s := seriesNamed(c, run, name)
	if s == nil {
		t.Errorf("chart %s: no series %s/%s; has %v", id, run, name, c.Series)
		return
	}
	if !near(s.X, x) || !near(s.Y, y) {
		t.Errorf("chart %s series %s/%s:\n x %v\n y %v\nwant\n x %v\n y %v", id, run, name, s.X, s.Y, x, y)
	}
}

// TestReportCharts: the PNG charts of the synthetic lake hold the known
// series, notes for what a run lacks, and images of the stated size.
func TestReportCharts(t *testing.T) {
	root := syntheticLake(t)
	r, err := buildReport(t, root, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Draw(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	charts := map[string]*Chart{}
	for _, c := range r.Charts {
		ids = append(ids, c.ID)
		charts[c.ID] = c
	}
	if strings.Join(ids, " ") != strings.Join(wantCharts, " ") {
		t.Fatalf("charts %v, want %v", ids, wantCharts)
	}

	var entA, entB, rwB, ones, clipA, gnA []float64
	for s := 1; s <= trainSteps; s++ {
		entA = append(entA, entropyA(s))
		ones = append(ones, 0.375)
		clipA = append(clipA, 0.01*float64(s))
		gnA = append(gnA, 1/float64(s))
	}
	for s := 1; s <= bSteps; s++ {
		entB = append(entB, entropyB(s))
		rwB = append(rwB, rewardMeanB(s))
	}
	// Train reward of a from scored (train rows only: the all-correct eval
	// rows would raise it to 0.5), b's from its train/reward_mean metric.
	checkSeries(t, charts, "reward", "a", "reward (scored)", steps(1, trainSteps), ones)
	checkSeries(t, charts, "reward", "b", "train/reward_mean", steps(1, bSteps), rwB)
	checkSeries(t, charts, "entropy", "a", "actor/entropy", steps(1, trainSteps), entA)
	checkSeries(t, charts, "entropy", "b", "actor/entropy", steps(1, bSteps), entB)
	checkSeries(t, charts, "clipfrac", "a", "actor/pg_clipfrac", steps(1, trainSteps), clipA)
	checkSeries(t, charts, "grad_norm", "a", "actor/grad_norm", steps(1, trainSteps), gnA)
	if s := seriesNamed(charts["kl"], "a", "actor/kl_loss"); s == nil || len(s.Y) != trainSteps {
		t.Errorf("kl chart: series a/actor/kl_loss %v", s)
	}
	// Eval against the checkpoint evaluated (policy_step), not the step.
	checkSeries(t, charts, "eval-arith", "a", "pass@1", []float64{0, trainSteps}, []float64{0.4, 0.7})
	checkSeries(t, charts, "eval-arith", "a", "pass@4", []float64{0, trainSteps}, []float64{0.7, 0.9})
	if s := seriesNamed(charts["eval-arith"], "a", "policy_step"); s != nil {
		t.Errorf("policy_step drawn as an eval score: %v", s)
	}
	// Curriculum of a: every step, the 4 prompts' in-step pass rates are
	// 0, 1/4, 1/2, 3/4: a quarter in each of the first four bins.
	for i, bin := range CurriculumBins {
		want := 0.25
		if i >= 4 {
			want = 0
		}
		rep := make([]float64, trainSteps)
		for j := range rep {
			rep[j] = want
		}
		checkSeries(t, charts, "curriculum-a", "a", bin, steps(1, trainSteps), rep)
	}
	if charts["curriculum-a"].Kind != KindHeatmap {
		t.Errorf("curriculum chart kind %q", charts["curriculum-a"].Kind)
	}

	// Run b lacks most metrics: those charts say so instead of failing.
	for _, id := range []string{"kl", "clipfrac", "grad_norm", "response_length", "groups_kept", "eval-arith", "curriculum-b"} {
		c := charts[id]
		if c.hasRun("b") {
			t.Errorf("chart %s has a series for run b, which logged none", id)
		}
		if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "no data for run b") {
			t.Errorf("chart %s notes %q, want one 'no data for run b'", id, c.Notes)
		}
	}
	if len(charts["entropy"].Notes) != 0 || len(charts["reward"].Notes) != 0 {
		t.Errorf("notes on charts both runs have: %q %q", charts["entropy"].Notes, charts["reward"].Notes)
	}

	// Every image is a PNG of the stated size that is not blank.
	for _, c := range r.Charts {
		img, err := png.Decode(bytes.NewReader(c.PNG))
		if err != nil {
			t.Errorf("chart %s: %v", c.ID, err)
			continue
		}
		b := img.Bounds()
		if w, h := pixels(Width), pixels(Height); b.Dx() != w || b.Dy() != h {
			t.Errorf("chart %s: %dx%d, want %dx%d", c.ID, b.Dx(), b.Dy(), w, h)
		}
		if f := inkFraction(img); f < 0.01 {
			t.Errorf("chart %s: %.4f of its pixels are not white", c.ID, f)
		}
	}
}

// pixels is a length in pixels at DPI.
func pixels(l vg.Length) int { return int(math.Round(float64(l/vg.Inch) * DPI)) }

// inkFraction is the share of pixels that are not (nearly) white.
func inkFraction(img image.Image) float64 {
	b := img.Bounds()
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
		}
	}
	return float64(ink) / float64(b.Dx()*b.Dy())
}

// TestReportNoData: a run with no metric at all still yields every chart,
// each drawn empty with a note, and the series lists are empty.
func TestReportNoData(t *testing.T) {
	root := syntheticLake(t)
	// Run c has only rollouts (no rewards): known to the lake, no curve.
	ctx := context.Background()
	lake, _ := arrowio.OpenLake(root)
	mem, err := rsql.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	commitSQL(t, ctx, mem, lake, "rollouts", "c", 1, `SELECT 'x' AS rollout_id, 'p0' AS prompt_id, 0::INTEGER AS sample_idx, 0::BIGINT AS policy_step,
  'q' AS prompt, 'a' AS completion, [1]::INTEGER[] AS prompt_tokens, [2]::INTEGER[] AS completion_tokens, [-1]::FLOAT[] AS logprobs,
  'stop' AS finish_reason, 1.0::DOUBLE AS temperature, 1::BIGINT AS seed, 'train' AS tag, now() AS created_at`)
	r, err := buildReport(t, root, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Draw(); err != nil {
		t.Fatal(err)
	}
	if len(r.Charts) != 9 { // reward, 6 metric charts, one empty eval chart, curriculum of c
		t.Errorf("%d charts, want 9", len(r.Charts))
	}
	for _, c := range r.Charts {
		if len(c.Series) != 0 || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "no data for run c") {
			t.Errorf("chart %s: series %v notes %q", c.ID, c.Series, c.Notes)
		}
		img, err := png.Decode(bytes.NewReader(c.PNG))
		if err != nil || inkFraction(img) < 0.005 {
			t.Errorf("chart %s: empty chart not drawn (%v)", c.ID, err)
		}
	}
}

func TestReportUnknownRun(t *testing.T) {
	root := syntheticLake(t)
	_, err := buildReport(t, root, "a", "nosuch")
	var ue *UnknownRunError
	if !errors.As(err, &ue) || ue.Run != "nosuch" || strings.Join(ue.Known, ",") != "a,b" {
		t.Fatalf("got %v, want UnknownRunError for nosuch listing a, b", err)
	}
	if !strings.Contains(err.Error(), "runs with data: a, b") {
		t.Errorf("message does not list the runs: %v", err)
	}
}

func TestWritePNGs(t *testing.T) {
	root := syntheticLake(t)
	r, err := buildReport(t, root, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WritePNGs(t.TempDir(), r); err == nil {
		t.Error("WritePNGs before Draw: no error")
	}
	if err := r.Draw(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "charts")
	paths, err := WritePNGs(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(wantCharts)-1 || filepath.Base(paths[0]) != "01-reward.png" || filepath.Base(paths[8]) != "09-curriculum-a.png" {
		t.Fatalf("paths %v", paths)
	}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, r.Charts[i].PNG) {
			t.Errorf("%s: %v (or content differs)", p, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(paths) {
		t.Errorf("%d files in %s (temporary files left?)", len(ents), dir)
	}
}
