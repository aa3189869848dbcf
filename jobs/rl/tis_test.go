package rl

import (
	"errors"
	"math"
	"strings"
	"testing"

	"rljob/jobs"
)

// trainCall is grpoJob's train call, which tisRun replaces.
const trainCall = "CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28);"

// tisRun is init + one GRPO step (seed 5) whose train call is call.
func tisRun(t *testing.T, call string) (lake string) {
	t.Helper()
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 5})
	mustRun(t, lake, config, strings.Replace(grpoJob, trainCall, call, 1), runOpt{seed: 5})
	return lake
}

// TestTrainTIS: train's optional old_logprobs column (truncated importance
// sampling, docs/RL.md): w = min(exp(logprobs − old_logprobs), tis_cap)
// multiplies each token's PPO term. On the first, on-policy update of a
// step (ρ = 1 exactly):
//
//   - old_logprobs = logprobs: w = exp(0) = 1, so the checkpoint equals the
//     one trained without the column bit for bit;
//   - old_logprobs = logprobs − 2: exp(2) > 2, every w = 2 exactly, so
//     pg_loss and grad_norm are exactly twice those without the column,
//     tis_clipfrac 1, tis_behav_kl −2;
//   - old_logprobs = logprobs + 0.5: w = e^−0.5 = 0.60653066 (to float32
//     rounding of the inputs), nothing truncated, tis_behav_kl 0.5.
func TestTrainTIS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + one GRPO step of a tiny model four times")
	}
	base := tisRun(t, trainCall)
	withCol := func(expr string) string {
		return strings.Replace(trainCall, "'train_batch'", "'SELECT *, "+expr+" AS old_logprobs FROM train_batch'", 1)
	}
	same := tisRun(t, withCol("logprobs"))
	sameFiles(t, "checkpoint with old_logprobs = logprobs vs without", checkpointFiles(t, base, 1), checkpointFiles(t, same, 1))

	m0, m1 := metricsOf(t, base, 1), metricsOf(t, same, 1)
	if _, ok := m0["actor/tis_weight_mean"]; ok {
		t.Errorf("metrics without old_logprobs have actor/tis_weight_mean: %v", keys2(m0))
	}
	if m1["actor/tis_weight_mean"] != 1 || m1["actor/tis_clipfrac"] != 0 || m1["actor/tis_behav_kl"] != 0 {
		t.Errorf("old_logprobs = logprobs: tis metrics %v %v %v, want 1 0 0", m1["actor/tis_weight_mean"], m1["actor/tis_clipfrac"], m1["actor/tis_behav_kl"])
	}
	if m0["actor/pg_loss"] == 0 || m0["actor/grad_norm"] == 0 {
		t.Fatalf("baseline pg_loss %v, grad_norm %v: want non-zero to compare against", m0["actor/pg_loss"], m0["actor/grad_norm"])
	}

	capped := metricsOf(t, tisRun(t, withCol("list_transform(logprobs, x -> x - 2)")), 1)
	rel := func(got, want float64) bool { return math.Abs(got-want) <= 1e-12*math.Abs(want) }
	if !rel(capped["actor/pg_loss"], 2*m0["actor/pg_loss"]) || !rel(capped["actor/grad_norm"], 2*m0["actor/grad_norm"]) {
		t.Errorf("w = 2: pg_loss %v, grad_norm %v; want 2× %v, 2× %v", capped["actor/pg_loss"], capped["actor/grad_norm"], m0["actor/pg_loss"], m0["actor/grad_norm"])
	}
	if capped["actor/tis_weight_mean"] != 2 || capped["actor/tis_clipfrac"] != 1 || !near(capped["actor/tis_behav_kl"], -2, 1e-6) {
		t.Errorf("w = 2: tis metrics %v %v %v, want 2 1 −2", capped["actor/tis_weight_mean"], capped["actor/tis_clipfrac"], capped["actor/tis_behav_kl"])
	}

	below := metricsOf(t, tisRun(t, withCol("list_transform(logprobs, x -> x + 0.5)")), 1)
	if !near(below["actor/tis_weight_mean"], 0.60653066, 1e-6) || below["actor/tis_clipfrac"] != 0 || !near(below["actor/tis_behav_kl"], 0.5, 1e-6) {
		t.Errorf("w = e^−0.5: tis metrics %v %v %v, want 0.60653066 0 0.5", below["actor/tis_weight_mean"], below["actor/tis_clipfrac"], below["actor/tis_behav_kl"])
	}
	if below["actor/pg_clipfrac"] != m0["actor/pg_clipfrac"] {
		t.Errorf("pg_clipfrac %v with TIS, %v without: the clip is computed before the weight", below["actor/pg_clipfrac"], m0["actor/pg_clipfrac"])
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestTrainTISBadColumn: an old_logprobs of the wrong length, NULL or
// non-finite is a data error naming the column; tis_cap must be > 0.
func TestTrainTISBadColumn(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	row := `SELECT 'r0' AS rollout_id, [1, 5]::INTEGER[] AS prompt_tokens, [6, 7]::INTEGER[] AS completion_tokens,
  [-1.0, -2.0]::FLOAT[] AS logprobs, 1.0 AS advantage, `
	for _, tc := range []struct{ name, old, want string }{
		{"short", "[-1.0]::FLOAT[]", "1 old_logprobs for 2 completion tokens"},
		{"NULL", "NULL::FLOAT[]", "old_logprobs is NULL"},
		{"NaN", "[-1.0, 'NaN'::FLOAT]::FLOAT[]", "old_logprobs[1] is NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runJob(t, lake, config, "CREATE TABLE d AS "+row+tc.old+" AS old_logprobs;\nCALL train(data := 'd');\n", runOpt{})
			var de *jobs.DataError
			if !errors.As(err, &de) || de.Column != "old_logprobs" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %T %v, want a data error on old_logprobs containing %q", err, err, tc.want)
			}
		})
	}
	_, err := runJob(t, lake, config, "CREATE TABLE d AS "+row+"logprobs AS old_logprobs;\nCALL train(data := 'd', tis_cap := 0);\n", runOpt{})
	if err == nil || !strings.Contains(err.Error(), "tis_cap must be > 0") {
		t.Errorf("tis_cap := 0: err = %v", err)
	}
}
