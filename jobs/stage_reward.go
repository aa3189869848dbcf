package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs/verify"
	rsql "github.com/rljob/rljob/sql"
)

// Verifiers accepted by reward(verifier := ...).
var Verifiers = verify.Names()

// rewardStage scores completions with a verifier from jobs/verify.
type rewardStage struct{}

func (rewardStage) Spec() StageSpec {
	return StageSpec{
		Name: "reward",
		Doc: "Score completions against their ground-truth answers with a verifier (jobs/verify) and commit one " +
			"row per rollout to `output` (rewards: run, step, rollout_id, verifier, reward, correct, extracted). " +
			"Reads columns rollout_id, completion, answer (and prompt_id when sharded). By default it scores this step's " +
			"rollouts (this_step_rollouts) that this verifier has not scored yet in this step, so a second reward call, or a " +
			"refill round, scores only the new ones. A (run, step, rollout_id, verifier) is scored once: an explicit rollouts " +
			"table holding rows this verifier already scored in this step is an error naming them. Sharded: handles rows with " +
			"hash(prompt_id) % num_shards = shard. An empty input commits nothing.",
		Sharded: true,
		Args: []ArgSpec{
			{Name: "verifier", Type: TypeString, Default: "exact", Enum: Verifiers,
				Doc: "exact: whitespace-normalised equality; gsm8k: last '#### N'; gsm8k_flexible: last number; math: \\boxed{} / Answer: / last number, math-equivalence; regex: the last match of pattern (its first group, if any) equals answer"},
			{Name: "pattern", Type: TypeString, Doc: "regular expression (Go RE2 syntax) for verifier 'regex'"},
			{Name: "rollouts", Type: TypeTable, DefaultDoc: "this step's rollouts not yet scored by this verifier",
				Doc: "table or query of completions to score; all of its rows are scored"},
			{Name: "output", Type: TypeString, Default: arrowio.TableRewards, Doc: "lake table to write"},
		},
		Outputs: func(a Args) []string { return []string{a.String("output")} },
		Check: func(a Args) (string, string) {
			if a.String("verifier") == "regex" && a.String("pattern") == "" {
				return "verifier 'regex' needs pattern", "add pattern := '...'"
			}
			if a.String("verifier") != "regex" && a.Has("pattern") {
				return "pattern is only used by verifier 'regex'", "remove pattern, or use verifier := 'regex'"
			}
			return checkOutputTable(a.String("output"))
		},
	}
}

// Run reads (rollout_id, completion, answer) in rollout_id order, scores each
// row with verify.Score and commits the rewards. Summary metrics: accuracy
// (fraction correct) and mean_reward.
func (rewardStage) Run(ctx context.Context, sc *StageCtx, a Args) (Summary, error) {
	verifier, into := a.String("verifier"), a.String("output")
	score, err := verify.Compile(verifier, verify.Options{Pattern: a.String("pattern")})
	if err != nil {
		return Summary{}, &UsageError{Pos: a.Pos("pattern"), Msg: "reward: " + err.Error()}
	}
	src, arg := rsql.ThisStepPrefix+arrowio.TableRollouts, "rollouts"
	if a.Has("rollouts") {
		src = a.String("rollouts")
	}
	need := []string{"rollout_id", "completion", "answer"}
	if sc.NumShards > 1 {
		need = append(need, "prompt_id")
	}
	if !a.Has("rollouts") {
		var n int64
		if err := sc.Engine.Conn().QueryRowContext(ctx, "SELECT count(*) FROM "+src).Scan(&n); err != nil {
			return Summary{}, fmt.Errorf("jobs: reward: count %s: %w", src, err)
		}
		if n == 0 {
			return Summary{Table: into, Skipped: true, Note: fmt.Sprintf(
				"reward: no rollouts in step %d of run %s yet (call rollout, save or exec into rollouts earlier in the step): nothing to score", sc.Step, sc.Run)}, nil
		}
	}
	if err := sc.RequireColumns(ctx, arg, src, need...); err != nil {
		var de *DataError
		if errors.As(err, &de) && de.Column == "answer" && !a.Has("rollouts") {
			de.Hint = "rollouts carry the prompts' extra columns: give rollout a prompts table with an answer column (the ground truth), or pass rollouts := a table joining one in"
		}
		return Summary{}, err
	}
	where, err := unscored(ctx, sc, a, src, verifier, into)
	if err != nil {
		return Summary{}, err
	}
	q := fmt.Sprintf(`SELECT CAST(rollout_id AS VARCHAR) AS rollout_id, CAST(completion AS VARCHAR) AS completion,
  CAST(answer AS VARCHAR) AS answer FROM %s WHERE %s AND %s ORDER BY rollout_id`,
		TableRef(src), where, sc.ShardPredicate("prompt_id"))
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return Summary{}, ClassifySQL(err, a.Pos(arg), q)
	}
	defer rr.Release()

	sch := arrowio.RewardsSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	var n, correct int64
	var sum float64
	bar := sc.Bar("reward", 0)
	defer bar.Done()
	for rr.Next() {
		rec := rr.RecordBatch()
		ids, _ := rec.Column(0).(stringArray)
		comps, _ := rec.Column(1).(stringArray)
		answers, _ := rec.Column(2).(stringArray)
		if ids == nil || comps == nil || answers == nil {
			return Summary{}, fmt.Errorf("jobs: reward: unexpected arrow types in %s", rec.Schema())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if ids.IsNull(i) {
				return Summary{}, &DataError{Pos: a.Pos(arg), Msg: fmt.Sprintf("reward: %s has a row with NULL rollout_id", src), Table: src, Column: "rollout_id"}
			}
			comp, ans := "", ""
			if !comps.IsNull(i) {
				comp = comps.Value(i)
			}
			if !answers.IsNull(i) {
				ans = answers.Value(i)
			}
			r := score(comp, ans)
			b.Field(0).(*array.StringBuilder).Append(ids.Value(i))
			b.Field(1).(*array.StringBuilder).Append(verifier)
			b.Field(2).(*array.Float64Builder).Append(r.Reward)
			b.Field(3).(*array.BooleanBuilder).Append(r.Correct)
			b.Field(4).(*array.StringBuilder).Append(r.Extracted)
			n++
			sum += r.Reward
			if r.Correct {
				correct++
			}
		}
		bar.Add(rec.NumRows())
	}
	if err := rr.Err(); err != nil {
		return Summary{}, ClassifySQL(err, a.Pos(arg), q)
	}
	if n == 0 {
		what := src
		if !a.Has("rollouts") {
			what = fmt.Sprintf("rollouts of run %s step %d not yet scored by %s", sc.Run, sc.Step, verifier)
		}
		return Summary{Table: into, Skipped: true, Note: fmt.Sprintf("reward: no rows in %s (shard %d/%d): nothing to score", what, sc.Shard, sc.NumShards)}, nil
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	out, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		return Summary{}, err
	}
	defer out.Release()
	rows, err := sc.Commit(ctx, into, out)
	if err != nil {
		return Summary{}, err
	}
	return Summary{Table: into, Rows: rows, Metrics: map[string]float64{
		"accuracy": float64(correct) / float64(n), "mean_reward": sum / float64(n),
	}}, nil
}

// unscored returns the WHERE condition that keeps the rows of src that
// verifier has not scored in this step (this_step_<into>). For an explicit
// rollouts table such rows, or a rollout_id twice, are an error naming them;
// for the default (this step's rollouts) they are left out.
func unscored(ctx context.Context, sc *StageCtx, a Args, src, verifier, into string) (string, error) {
	done := rsql.ThisStepPrefix + into
	var n int
	if err := sc.Engine.Conn().QueryRowContext(ctx, "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", done).Scan(&n); err != nil {
		return "", fmt.Errorf("jobs: reward: look up %s: %w", done, err)
	}
	cond := "TRUE"
	if n > 0 {
		cond = fmt.Sprintf("CAST(rollout_id AS VARCHAR) NOT IN (SELECT CAST(rollout_id AS VARCHAR) FROM %s WHERE verifier = %s)", QuoteIdent(done), QuoteString(verifier))
	}
	if !a.Has("rollouts") {
		return cond, nil
	}
	q := fmt.Sprintf(`SELECT string_agg(id, ', ' ORDER BY id) FROM (
  SELECT CAST(rollout_id AS VARCHAR) AS id FROM %[1]s WHERE NOT (%[2]s) AND %[3]s
  UNION ALL
  SELECT id FROM (SELECT CAST(rollout_id AS VARCHAR) AS id FROM %[1]s WHERE %[3]s) GROUP BY id HAVING count(*) > 1
  ORDER BY id LIMIT 5)`, TableRef(src), cond, sc.ShardPredicate("prompt_id"))
	var dup *string
	if err := sc.Engine.Conn().QueryRowContext(ctx, q).Scan(&dup); err != nil {
		return "", ClassifySQL(err, a.Pos("rollouts"), q)
	}
	if dup != nil && *dup != "" {
		return "", &DataError{Pos: a.Pos("rollouts"), Table: src, Column: "rollout_id",
			Msg: fmt.Sprintf("reward: %s holds rollouts that verifier %s has already scored in step %d, or holds twice: rollout_id %s",
				src, verifier, sc.Step, *dup),
			Hint: "score each (rollout, verifier) once per step: leave rollouts := out to score only this step's new rollouts, or filter the table"}
	}
	return cond, nil
}
