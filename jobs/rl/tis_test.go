package rl

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer/loss"
)

// trainCall is grpoJob's train call, which tisRun replaces.
const trainCall = "CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28);"

// tisRun is init + one GRPO step (seed 5) whose train call is call.
func tisRun(t *testing.T, call string) (lake string) {
	t.Helper()
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 5})
	call = strings.Replace(call, ");", ", full_state_every := 1);", 1) // full checkpoints: the weights are compared
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

// TestEntropyMetricAggregation: actor/entropy is the batch's entropies
// aggregated with loss_agg (verl's agg_loss of the pre-update entropies).
// Same data and policy under token-mean (ΣH/T), seq-mean-token-sum-norm
// with L = 6 (ΣH/6) and seq-mean-token-sum (ΣH/N): so entropy_norm·6 =
// entropy_sum·N = entropy_mean·T, with T = train/tokens and N =
// train/sequences (every sequence here has at least one token).
func TestEntropyMetricAggregation(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + one GRPO step of a tiny model three times")
	}
	agg := func(mode string) map[string]float64 {
		return metricsOf(t, tisRun(t, strings.Replace(trainCall, ");", ", loss_agg := '"+mode+"', max_new_tokens := 6);", 1)), 1)
	}
	mean, norm, sum := agg("token-mean"), agg("seq-mean-token-sum-norm"), agg("seq-mean-token-sum")
	T, N := mean["train/tokens"], mean["train/sequences"]
	if T == 0 || N == 0 || T == N || norm["train/tokens"] != T {
		t.Fatalf("tokens %v, sequences %v, tokens under sum-norm %v: want the same non-trivial batch", T, N, norm["train/tokens"])
	}
	sumH := mean["actor/entropy"] * T
	rel := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Abs(want) }
	if !(sumH > 0) || !rel(norm["actor/entropy"]*6, sumH) || !rel(sum["actor/entropy"]*N, sumH) {
		t.Errorf("ΣH from token-mean %v, from sum-norm·6 %v, from seq-mean-token-sum·N %v: want equal", sumH, norm["actor/entropy"]*6, sum["actor/entropy"]*N)
	}
}

// TestBatchEntropy: batchEntropy aggregates the rows' epoch-0 entropies
// over the whole batch: rows of completions [1 | 2 3] (entropies), prompt of 1 token.
func TestBatchEntropy(t *testing.T) {
	rows := []trainRow{
		{tokens: []int32{0, 1}, start: 1, ent: []float32{1}},
		{tokens: []int32{0, 1, 2}, start: 1, ent: []float32{2, 3}},
	}
	for _, tc := range []struct {
		agg  string
		want float64
	}{{"token-mean", 2}, {"seq-mean-token-mean", 1.75}, {"seq-mean-token-sum", 3}, {"seq-mean-token-sum-norm", 1.5}} {
		got, err := batchEntropy(rows, loss.Config{Agg: loss.Agg(tc.agg), NormLen: 4})
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.agg, got, err, tc.want)
		}
	}
}
