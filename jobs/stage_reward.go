package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs/verify"
	rsql "github.com/rljob/rljob/sql"
)

// Verifiers lists the built-in verifiers of reward(verifier := ...);
// 'model' and 'exec:CMD' are the judges.
var Verifiers = verify.Names()

// rewardStage scores completions with a verifier from jobs/verify, an
// external judge (exec:CMD, over jobs/extproc) or a model judge
// (ModelJudge, set by jobs/rl).
type rewardStage struct{}

func (rewardStage) Spec() StageSpec {
	return StageSpec{
		Name: "reward",
		Doc: "Score completions with a verifier and commit one row per rollout to `output` (rewards: run, step, rollout_id, verifier, " +
			"reward, correct, extracted). Verifiers: the built-in ones (jobs/verify) against the ground-truth answer; 'exec:CMD', an " +
			"external judge speaking JSON lines on stdin/stdout (docs/rewards.md), started once per call, with a per-judgement timeout " +
			"and on_error policy; 'model', a checkpoint (judge := ...) scoring by the probability of a verdict after a prompt template " +
			"or by generating a verdict parsed by a built-in verifier. The verifier column holds name (default: the verifier as " +
			"written, 'model:<judge>' for the model). Reads columns rollout_id, completion, answer, and prompt when present (and " +
			"prompt_id when sharded). By default it scores this step's " +
			"rollouts (this_step_rollouts) that this verifier has not scored yet in this step, so a second reward call, or a " +
			"refill round, scores only the new ones. A (run, step, rollout_id, verifier) is scored once: an explicit rollouts " +
			"table holding rows this verifier already scored in this step is an error naming them. Sharded: handles rows with " +
			"hash(prompt_id) % num_shards = shard. An empty input commits nothing.",
		Sharded: true,
		Args: []ArgSpec{
			{Name: "verifier", Type: TypeString, Default: "exact",
				Doc: "exact: whitespace-normalised equality; gsm8k: last '#### N'; gsm8k_flexible: last number; math: \\boxed{} / Answer: / last number, math-equivalence; " +
					"regex: the last match of pattern (its first group, if any) equals answer; 'exec:CMD': external judge (sh -c CMD in the job file's folder); 'model': a checkpoint judges (judge := ...)"},
			{Name: "pattern", Type: TypeString, Doc: "regular expression (Go RE2 syntax) for verifier 'regex', or the model judge's parse := 'regex'"},
			{Name: "rollouts", Type: TypeTable, DefaultDoc: "this step's rollouts not yet scored by this verifier",
				Doc: "table or query of completions to score; all of its rows are scored"},
			{Name: "output", Type: TypeString, Default: arrowio.TableRewards, Doc: "lake table to write"},
			{Name: "name", Type: TypeString, DefaultDoc: "the verifier; 'model:<judge>' for 'model'", Doc: "the value of the verifier column (tell two judges apart)"},
			{Name: "timeout", Type: TypeFloat, Default: 60.0, Doc: "exec: seconds one judgement may take; then it counts as failed (on_error) and the judge keeps running"},
			{Name: "concurrency", Type: TypeInt, Default: int64(16), Doc: "exec: judgements in flight at once"},
			{Name: "on_error", Type: TypeString, Default: "reward", Enum: []string{"reward", "fail"},
				Doc: "exec: a timed-out judgement or an \"error\" answer is recorded with error_reward ('reward'; extracted says 'timeout: ...' or 'error: ...') or fails the call ('fail'); a crash or protocol error always fails it"},
			{Name: "error_reward", Type: TypeFloat, Default: 0.0, Doc: "exec: the reward of a failed judgement under on_error := 'reward' (correct is false)"},
			{Name: "judge", Type: TypeString, Doc: "model: the judging checkpoint: 'ref' (this run's first checkpoint), 'latest', 'step=K', 'run=X[/step=K]' (another run), or a checkpoint folder"},
			{Name: "mode", Type: TypeString, Default: "logprob", Enum: []string{"logprob", "generate"},
				Doc: "model: logprob: reward = P(verdict | template), or P(verdict) / (P(verdict) + P(against)); generate: the judge's greedy continuation of template, parsed by parse against verdict"},
			{Name: "template", Type: TypeString, Default: ModelJudgeTemplate,
				Doc: "model: the judge's prompt; {prompt}, {completion} and {answer} are replaced by the row's columns"},
			{Name: "verdict", Type: TypeString, DefaultDoc: "' yes' (logprob), 'yes' (generate)", Doc: "model: the text that means correct"},
			{Name: "against", Type: TypeString, Doc: "model, logprob: the text that means wrong (e.g. ' no'); normalises the reward over the two"},
			{Name: "threshold", Type: TypeFloat, Default: 0.5, Doc: "model, logprob: correct = reward >= threshold"},
			{Name: "parse", Type: TypeString, Default: "exact", Enum: Verifiers, Doc: "model, generate: the built-in verifier that compares the judge's text with verdict"},
			{Name: "max_new_tokens", Type: TypeInt, Default: int64(16), Doc: "model, generate: the judge's token budget"},
		},
		Outputs: func(a Args) []string { return []string{a.String("output")} },
		Check:   checkRewardArgs,
	}
}

// ModelJudgeTemplate is the model judge's default prompt template.
const ModelJudgeTemplate = "Question: {prompt}\nReference answer: {answer}\nProposed answer: {completion}\nIs the proposed answer correct?"

// judgeArgs are the arguments of each judge, which no other verifier takes.
var judgeArgs = []struct {
	kind, name string
	args       []string
}{
	{"exec:", "exec:CMD", []string{"timeout", "concurrency", "on_error", "error_reward"}},
	{"model", "model", []string{"judge", "mode", "template", "verdict", "against", "threshold", "parse", "max_new_tokens"}},
}

// checkRewardArgs checks the verifier and that each argument given is one
// the verifier uses.
func checkRewardArgs(a Args) (string, string) {
	v := a.String("verifier")
	kind := v
	if strings.HasPrefix(v, "exec:") {
		kind = "exec:"
	}
	switch {
	case kind == "exec:" && strings.TrimSpace(strings.TrimPrefix(v, "exec:")) == "":
		return "verifier 'exec:' names no command", "write verifier := 'exec:python3 judge.py' (run with sh -c in the job file's folder)"
	case kind != "exec:" && kind != "model" && !slices.Contains(Verifiers, v):
		all := append(slices.Clone(Verifiers), "model")
		hint := "or 'exec:CMD' for an external judge"
		if m := closest(v, all); m != "" {
			hint = fmt.Sprintf("did you mean '%s'? (%s)", m, hint)
		}
		return fmt.Sprintf("verifier %q is not one of %s, 'exec:CMD'", v, strings.Join(quoteAll(all), ", ")), hint
	}
	for _, ja := range judgeArgs {
		for _, n := range ja.args {
			if a.Given(n) && ja.kind != kind {
				return fmt.Sprintf("%s is only used by verifier '%s'", n, ja.name), "remove " + n
			}
		}
	}
	if msg, hint := checkJudgeArgs(a, kind); msg != "" {
		return msg, hint
	}
	regex := v == "regex" || kind == "model" && a.String("mode") == "generate" && a.String("parse") == "regex"
	if regex && a.String("pattern") == "" {
		return "verifier 'regex' needs pattern", "add pattern := '...'"
	}
	if !regex && a.Has("pattern") {
		return "pattern is only used by verifier 'regex' (or the model judge's parse := 'regex')", "remove pattern, or use verifier := 'regex'"
	}
	if a.Given("name") && strings.TrimSpace(a.String("name")) == "" {
		return "name is empty", "name := 'my_judge', or leave it out"
	}
	return checkOutputTable(a.String("output"))
}

// checkJudgeArgs checks the arguments of the exec: and model judges.
func checkJudgeArgs(a Args, kind string) (string, string) {
	switch kind {
	case "exec:":
		if !(a.Float("timeout") > 0) {
			return "timeout must be > 0 seconds", "timeout := 30"
		}
		if a.Int("concurrency") < 1 {
			return "concurrency must be >= 1", "concurrency := 16"
		}
	case "model":
		logprob := a.String("mode") == "logprob"
		switch {
		case !a.Has("judge") || strings.TrimSpace(a.String("judge")) == "":
			return "verifier 'model' needs judge", "judge := 'ref' (this run's first checkpoint), 'run=X', or a checkpoint folder"
		case !strings.Contains(a.String("template"), "{completion}"):
			return "template has no {completion}", "put {completion} where the judged text goes"
		case a.Given("verdict") && a.String("verdict") == "":
			return "verdict is empty", "verdict := ' yes'"
		case !logprob && (a.Given("against") || a.Given("threshold")):
			return "against and threshold are only used by mode 'logprob'", "remove them, or use mode := 'logprob'"
		case logprob && (a.Given("parse") || a.Given("max_new_tokens")):
			return "parse and max_new_tokens are only used by mode 'generate'", "remove them, or use mode := 'generate'"
		case !logprob && a.Int("max_new_tokens") < 1:
			return "max_new_tokens must be >= 1", "max_new_tokens := 16"
		}
	}
	return "", ""
}

// ModelVerdict is the verdict the model judge uses: verdict :=, else ' yes'
// (logprob) or 'yes' (generate).
func ModelVerdict(a Args) string {
	if a.Given("verdict") {
		return a.String("verdict")
	}
	if a.String("mode") == "generate" {
		return "yes"
	}
	return " yes"
}

// Run reads this shard's (rollout_id, prompt, completion, answer) rows in
// rollout_id order, scores them with the verifier (a built-in one, an
// exec: judge or the model judge) and commits the rewards. Summary
// metrics: accuracy (fraction correct), mean_reward, and for judges the
// failed judgements (judge_timeouts, judge_errors).
func (rewardStage) Run(ctx context.Context, sc *StageCtx, a Args) (Summary, error) {
	into := a.String("output")

	// Inputs: the scorer, then the rows not yet scored under its name.
	sc.Log.Debug().Str("verifier", a.String("verifier")).Msg("reward: scoring")
	sv, err := newScorer(sc, a)
	if err != nil {
		return Summary{}, err
	}
	rows, skip, err := readJudgeRows(ctx, sc, a, sv.name, into)
	if err != nil || skip != nil {
		return orSkip(skip, err)
	}

	// Work: score every row.
	results, fails, err := sv.score(ctx, sc, a, rows)
	if err != nil {
		return Summary{}, err
	}

	// Outputs: one rewards row per input row.
	n, err := commitRewards(ctx, sc, into, sv.name, rows, results)
	if err != nil {
		return Summary{}, err
	}
	return Summary{Table: into, Rows: n, Metrics: rewardMetrics(results, fails)}, nil
}

// orSkip returns the skip summary, or the error.
func orSkip(skip *Summary, err error) (Summary, error) {
	if err != nil {
		return Summary{}, err
	}
	return *skip, nil
}

// readJudgeRows reads the rows to score: this step's rollouts (or the
// rollouts argument) that name has not scored in this step, in this shard,
// in rollout_id order. prompt is "" where the table has no prompt column.
// skip is set (and rows nil) when there is nothing to score.
func readJudgeRows(ctx context.Context, sc *StageCtx, a Args, name, into string) ([]JudgeRow, *Summary, error) {
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
			return nil, nil, fmt.Errorf("jobs: reward: count %s: %w", src, err)
		}
		if n == 0 {
			return nil, &Summary{Table: into, Skipped: true, Note: fmt.Sprintf(
				"reward: no rollouts in step %d of run %s yet (call rollout, save or exec into rollouts earlier in the step): nothing to score", sc.Step, sc.Run)}, nil
		}
	}
	if err := sc.RequireColumns(ctx, arg, src, need...); err != nil {
		var de *DataError
		if errors.As(err, &de) && de.Column == "answer" && !a.Has("rollouts") {
			de.Hint = "rollouts carry the prompts' extra columns: give rollout a prompts table with an answer column (the ground truth), or pass rollouts := a table joining one in"
		}
		return nil, nil, err
	}
	cols, err := sc.Columns(ctx, arg, src)
	if err != nil {
		return nil, nil, err
	}
	prompt := "CAST(NULL AS VARCHAR)"
	for _, c := range cols {
		if strings.EqualFold(c, "prompt") {
			prompt = "CAST(" + QuoteIdent(c) + " AS VARCHAR)"
		}
	}
	where, err := unscored(ctx, sc, a, src, name, into)
	if err != nil {
		return nil, nil, err
	}
	q := fmt.Sprintf(`SELECT CAST(rollout_id AS VARCHAR) AS rollout_id, %s AS prompt, CAST(completion AS VARCHAR) AS completion,
  CAST(answer AS VARCHAR) AS answer FROM %s WHERE %s AND %s ORDER BY rollout_id`,
		prompt, TableRef(src), where, sc.ShardPredicate("prompt_id"))
	rows, err := queryJudgeRows(ctx, sc, a.Pos(arg), src, q)
	if err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		what := src
		if !a.Has("rollouts") {
			what = fmt.Sprintf("rollouts of run %s step %d not yet scored by %s", sc.Run, sc.Step, name)
		}
		return nil, &Summary{Table: into, Skipped: true, Note: fmt.Sprintf("reward: no rows in %s (shard %d/%d): nothing to score", what, sc.Shard, sc.NumShards)}, nil
	}
	return rows, nil, nil
}

// queryJudgeRows runs q (rollout_id, prompt, completion, answer) into rows;
// a NULL rollout_id is a DataError, other NULLs read as "".
func queryJudgeRows(ctx context.Context, sc *StageCtx, pos Pos, src, q string) ([]JudgeRow, error) {
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return nil, ClassifySQL(err, pos, q)
	}
	defer rr.Release()
	var rows []JudgeRow
	for rr.Next() {
		rec := rr.RecordBatch()
		var c [4]stringArray
		for j := range c {
			c[j], _ = rec.Column(j).(stringArray)
			if c[j] == nil {
				return nil, fmt.Errorf("jobs: reward: unexpected arrow types in %s", rec.Schema())
			}
		}
		val := func(j, i int) string {
			if c[j].IsNull(i) {
				return ""
			}
			return strings.Clone(c[j].Value(i)) // Value aliases the batch's buffer, released below
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if c[0].IsNull(i) {
				return nil, &DataError{Pos: pos, Msg: fmt.Sprintf("reward: %s has a row with NULL rollout_id", src), Table: src, Column: "rollout_id"}
			}
			rows = append(rows, JudgeRow{RolloutID: val(0, i), Prompt: val(1, i), Completion: val(2, i), Answer: val(3, i)})
		}
	}
	if err := rr.Err(); err != nil {
		return nil, ClassifySQL(err, pos, q)
	}
	return rows, nil
}

// commitRewards commits one rewards row per (row, result) under verifier
// name.
func commitRewards(ctx context.Context, sc *StageCtx, into, name string, rows []JudgeRow, results []verify.Result) (int64, error) {
	sch := arrowio.RewardsSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for i, r := range results {
		b.Field(0).(*array.StringBuilder).Append(rows[i].RolloutID)
		b.Field(1).(*array.StringBuilder).Append(name)
		b.Field(2).(*array.Float64Builder).Append(r.Reward)
		b.Field(3).(*array.BooleanBuilder).Append(r.Correct)
		b.Field(4).(*array.StringBuilder).Append(r.Extracted)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	out, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		return 0, err
	}
	defer out.Release()
	return sc.Commit(ctx, into, out)
}

// rewardMetrics: accuracy, mean_reward, and the judges' failed calls.
func rewardMetrics(results []verify.Result, fails judgeFails) map[string]float64 {
	var correct, sum float64
	for _, r := range results {
		sum += r.Reward
		if r.Correct {
			correct++
		}
	}
	n := float64(len(results))
	m := map[string]float64{"accuracy": correct / n, "mean_reward": sum / n}
	if fails.judged {
		m["judge_timeouts"], m["judge_errors"] = float64(fails.timeouts), float64(fails.errors)
	}
	return m
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
