package rl

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/trainer"
)

func init() { jobs.Register(logprobsStage{}) }

// logprobsStage recomputes the per-token log π of stored sequences under a
// checkpoint (issue 8).
type logprobsStage struct{}

// logprobsBatchTokens bounds the padded tokens of one forward pass.
const logprobsBatchTokens = 1 << 14

func (logprobsStage) Spec() jobs.StageSpec {
	return jobs.StageSpec{
		Name: "logprobs",
		Doc: "Recompute log π of each completion token of stored (prompt_tokens, completion_tokens) rows under a checkpoint and commit " +
			"them to the lake table output: rollout_id, logprobs (FLOAT[], one per completion token), policy_step (the checkpoint's step " +
			"in this run, NULL for another run's or a folder elsewhere), temperature, created_at. policy: 'latest', 'step=K', 'ref' (the run's " +
			"first checkpoint, the reference policy of KL: log π_ref computed once), 'run=X/step=K' (another run's checkpoint at a complete " +
			"step) or a folder. For rollouts from an external engine (exec), KL against a " +
			"reference model computed once, and replay rows whose behaviour policy is stale. The forward is the sampler's batch-invariant " +
			"one, so for the checkpoint and temperature that sampled a rollout the values equal its logprobs bit for bit. Temperature: " +
			"the argument, else each row's temperature column (0, greedy, counts as 1), else 1. Sharded like rollout: rows with " +
			"hash(prompt_id) % num_shards = shard (hash(rollout_id) when data has no prompt_id). No rows: nothing committed.",
		Sharded: true,
		Args: []jobs.ArgSpec{
			{Name: "data", Type: jobs.TypeTable, Required: true, Doc: "table (or query) with rollout_id (unique), prompt_tokens and completion_tokens (INTEGER[]); optional policy_mask (BOOLEAN[], episode rows: observation tokens, where it is false, get 0 as in rollouts)"},
			{Name: "policy", Type: jobs.TypeString, Default: "latest", Doc: "'latest', 'step=K' (checkpoint K of this run), 'ref' (this run's first checkpoint: the reference policy of KL), " +
				"'run=X' or 'run=X/step=K' (another run's newest checkpoint in a complete step, or at complete step K), or a checkpoint folder"},
			{Name: "output", Type: jobs.TypeString, Default: "logprobs", Doc: "lake table to commit to"},
			dtypeArgSpec(""),
			{Name: "temperature", Type: jobs.TypeFloat, Doc: "softmax temperature (> 0); default: the rows' temperature column, else 1"},
		},
		Outputs: func(a jobs.Args) []string { return []string{a.String("output")} },
		Check: func(a jobs.Args) (string, string) {
			switch {
			case a.Has("temperature") && !(a.Float("temperature") > 0):
				return "temperature must be > 0", "temperature := 1.0"
			case !validTableName(a.String("output")):
				return fmt.Sprintf("output %q is not a table name", a.String("output")), "output := 'ref_logprobs' (letters, digits and _)"
			}
			return "", ""
		},
	}
}

// validTableName accepts the plain identifiers a lake table folder can be
// named by.
func validTableName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// logprobsRow is one sequence to score.
type logprobsRow struct {
	id     string
	tokens []int32   // prompt then completion
	start  int       // number of prompt tokens
	temp   float32   // as the forward gets it
	temp64 float64   // as written
	logp   []float32 // (completion tokens)
	mask   []bool    // policy_mask: false positions (observation tokens) get 0; nil: all policy
}

// Run reads the rows of this shard in rollout_id order, checks their
// tokens against the policy, runs the batch-invariant forward in batches of
// one temperature and commits one row per input row:
//
//	logprobs[j] = log softmax(z_t / T)[c_j],  z_t the logits after prompt + c_0..c_{j-1}
//
// normalised over the tokenizer's ids (a padded vocabulary's extra ids
// excluded, as the sampler does).
func (logprobsStage) Run(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) (jobs.Summary, error) {
	t0 := time.Now()
	defer kernels.ReserveSchedulerP()() // kernels/threads.go
	out := a.String("output")

	// Inputs: the rows of this shard, and the policy.
	rows, err := readLogprobsRows(ctx, sc, a)
	if err != nil {
		return jobs.Summary{}, err
	}
	if len(rows) == 0 {
		return jobs.Summary{Table: out, Skipped: true,
			Note: fmt.Sprintf("logprobs: no rows for shard %d/%d: nothing committed", sc.Shard, sc.NumShards)}, nil
	}
	dir, step, err := resolveScoringPolicy(sc, a, "policy")
	if err != nil {
		return jobs.Summary{}, err
	}
	pol, err := loadPolicyDir(sc, a, "policy", dir, step)
	if err != nil {
		return jobs.Summary{}, err
	}
	model := pol.Model
	defer releaseModel(model)
	model.Recompute = true // forward only: one layer's activations, the same bits, no extra work

	// Checks: token ids and lengths against the policy.
	limit := model.VocabLimit
	if limit <= 0 || limit > model.Config.VocabSize {
		limit = model.Config.VocabSize
	}
	for _, r := range rows {
		if len(r.tokens) > model.Config.MaxPositionEmbeddings {
			return jobs.Summary{}, &jobs.DataError{Pos: a.Pos("data"), Column: "completion_tokens",
				Msg: fmt.Sprintf("logprobs: rollout %q has %d prompt+completion tokens, more than max_position_embeddings %d", r.id, len(r.tokens), model.Config.MaxPositionEmbeddings)}
		}
		for _, t := range r.tokens {
			if t < 0 || int(t) >= limit {
				return jobs.Summary{}, &jobs.DataError{Pos: a.Pos("data"), Column: "completion_tokens",
					Msg:  fmt.Sprintf("logprobs: rollout %q has token %d outside the policy's vocabulary [0,%d)", r.id, t, limit),
					Hint: "were these rows tokenized with another tokenizer?"}
			}
		}
	}

	// Work: one temperature per batch; longest first so batches pad little.
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool {
		rx, ry := &rows[order[x]], &rows[order[y]]
		if rx.temp != ry.temp {
			return rx.temp < ry.temp
		}
		return len(rx.tokens) > len(ry.tokens)
	})
	bar := sc.Bar("logprobs", int64(len(rows)))
	for lo := 0; lo < len(order); {
		if err := ctx.Err(); err != nil {
			bar.Done()
			return jobs.Summary{}, err
		}
		first := &rows[order[lo]]
		hi := lo + 1
		for hi < len(order) && rows[order[hi]].temp == first.temp && (hi-lo+1)*len(first.tokens) <= logprobsBatchTokens {
			hi++
		}
		b, start := padBatch(hi-lo, func(i int) ([]int32, int) { r := &rows[order[lo+i]]; return r.tokens, r.start })
		logp, _, err := model.ForwardLogp(b, trainer.NextTokenTargets(b, start), first.temp, false)
		if err != nil {
			bar.Done()
			return jobs.Summary{}, errf("logprobs: forward: %w", err)
		}
		for i := range hi - lo {
			r := &rows[order[lo+i]]
			r.logp = slices.Clone(logp[i*b.T+r.start-1 : i*b.T+len(r.tokens)-1])
			for j, m := range r.mask {
				if !m {
					r.logp[j] = 0 // an observation token: not the policy's
				}
			}
		}
		bar.Add(int64(hi - lo))
		lo = hi
	}
	bar.Done()

	// Outputs.
	rec := logprobsRecord(rows, pol.PolicyStep(), t0.UTC())
	defer rec.Release()
	rr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return jobs.Summary{}, err
	}
	defer rr.Release()
	n, err := sc.Commit(ctx, out, rr)
	if err != nil {
		return jobs.Summary{}, err
	}

	// Summary.
	toks := 0
	for _, r := range rows {
		toks += len(r.logp)
	}
	return jobs.Summary{Table: out, Rows: n,
		Note:    fmt.Sprintf("logprobs: %d rows, %d completion tokens under %s", n, toks, pol.Dir),
		Metrics: map[string]float64{"rows": float64(n), "tokens": float64(toks)}}, nil
}

// resolveScoringPolicy resolves logprobs' policy argument: 'ref' is the
// run's first checkpoint (the reference policy of KL, usually init_policy's
// at step 0), 'run=X' and 'run=X/step=K' another run's newest checkpoint in
// a complete step (at step K) with step -1 (policy_step NULL), and anything
// else as resolvePolicy ('latest', 'step=K', a folder). A name that
// resolves to nothing is a UsageError at the argument.
func resolveScoringPolicy(sc *jobs.StageCtx, a jobs.Args, arg string) (dir string, step int64, err error) {
	v := strings.TrimSpace(a.String(arg))
	bad := func(msg, hint string) error {
		return &jobs.UsageError{Pos: a.Pos(arg), Msg: fmt.Sprintf("%s: %s := '%s': %s", sc.Stage, arg, v, msg), Hint: hint}
	}
	if v == "ref" {
		u, ok, err := firstCheckpoint(sc)
		if err != nil {
			return "", 0, err
		}
		if !ok {
			return "", 0, bad(fmt.Sprintf("run %q has no checkpoint before step %d, statement %d", sc.Run, sc.Step, sc.Call+1),
				"'ref' is the run's first checkpoint: start the run with CALL init_policy(...)")
		}
		return sc.Lake.Path(u.Dir()), u.Step, nil
	}
	return resolvePolicy(sc, a, arg)
}

// readLogprobsRows reads rollout_id, prompt_tokens, completion_tokens (and
// temperature when present) of this shard, in rollout_id order. A tokens
// column that is not a list of integers, a NULL or empty prompt and a
// duplicate rollout_id are DataErrors.
func readLogprobsRows(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) ([]logprobsRow, error) {
	from, colsRef := source(a.String("data"))
	if err := sc.RequireColumns(ctx, "data", colsRef, "rollout_id", "prompt_tokens", "completion_tokens"); err != nil {
		return nil, err
	}
	set, _, err := columnSet(ctx, sc, "data", colsRef)
	if err != nil {
		return nil, err
	}
	// the token columns' types, from an empty result
	q0 := fmt.Sprintf("SELECT %s, %s FROM %s LIMIT 0", jobs.QuoteIdent(set["prompt_tokens"]), jobs.QuoteIdent(set["completion_tokens"]), from)
	rr0, err := sc.Engine.QueryArrow(ctx, q0)
	if err != nil {
		return nil, jobs.ClassifySQL(err, a.Pos("data"), q0)
	}
	for _, f := range rr0.Schema().Fields() {
		if !intList(f.Type) {
			rr0.Release()
			return nil, &jobs.DataError{Pos: a.Pos("data"), Column: f.Name,
				Msg:  fmt.Sprintf("logprobs: column %s has type %s, want a list of token ids (INTEGER[])", f.Name, f.Type),
				Hint: "give the token ids as INTEGER[] (rollouts' prompt_tokens and completion_tokens are)"}
		}
	}
	rr0.Release()
	shardCol := "rollout_id"
	if _, ok := set["prompt_id"]; ok {
		shardCol = "prompt_id"
	}
	temp := "NULL"
	if c, ok := set["temperature"]; ok && !a.Has("temperature") {
		temp = "CAST(" + jobs.QuoteIdent(c) + " AS DOUBLE)"
	}
	mask := "CAST(NULL AS BOOLEAN[])"
	if c, ok := set[policyMaskColumn]; ok {
		mask = "CAST(" + jobs.QuoteIdent(c) + " AS BOOLEAN[])"
	}
	q := fmt.Sprintf("SELECT CAST(rollout_id AS VARCHAR), CAST(prompt_tokens AS INTEGER[]), CAST(completion_tokens AS INTEGER[]), %s, %s FROM %s WHERE %s ORDER BY 1",
		temp, mask, from, sc.ShardPredicate(shardCol))
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return nil, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	defer rr.Release()
	def := 1.0
	if a.Has("temperature") {
		def = a.Float("temperature")
	}
	var rows []logprobsRow
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		id, ok := strAt(rec.Column(0), i)
		if !ok {
			return &jobs.DataError{Pos: a.Pos("data"), Column: "rollout_id", Msg: "logprobs: a row has a NULL rollout_id"}
		}
		if n := len(rows); n > 0 && rows[n-1].id == id {
			return &jobs.DataError{Pos: a.Pos("data"), Column: "rollout_id", Msg: fmt.Sprintf("logprobs: rollout_id %q occurs twice", id)}
		}
		p, ok1 := i32s(rec.Column(1), i)
		c, ok2 := i32s(rec.Column(2), i)
		if !ok1 || !ok2 || len(p) == 0 {
			return &jobs.DataError{Pos: a.Pos("data"), Column: "prompt_tokens",
				Msg: fmt.Sprintf("logprobs: rollout %q has NULL or empty prompt_tokens, or NULL completion_tokens", id)}
		}
		t := def
		if v, ok := f64At(rec.Column(3), i); ok {
			t = v
			if t == 0 { // greedy rollouts store logprobs at temperature 1
				t = 1
			}
			if !(t > 0) {
				return &jobs.DataError{Pos: a.Pos("data"), Column: "temperature", Msg: fmt.Sprintf("logprobs: rollout %q has temperature %g", id, v)}
			}
		}
		r := logprobsRow{id: id, tokens: append(p, c...), start: len(p), temp: float32(t), temp64: t}
		if m, ok := bools(rec.Column(4), i); ok {
			if len(m) != len(c) {
				return &jobs.DataError{Pos: a.Pos("data"), Column: policyMaskColumn, Msg: fmt.Sprintf("logprobs: rollout %q has %d policy_mask values for %d completion tokens", id, len(m), len(c))}
			}
			r.mask = m
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return nil, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	return rows, nil
}

// intList reports whether t is a list of integers.
func intList(t arrow.DataType) bool {
	var elem arrow.DataType
	switch l := t.(type) {
	case *arrow.ListType:
		elem = l.Elem()
	case *arrow.LargeListType:
		elem = l.Elem()
	default:
		return false
	}
	switch elem.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return true
	}
	return false
}

// logprobsRecord is the output: rollout_id, logprobs, policy_step,
// temperature, created_at, in rollout_id order.
func logprobsRecord(rows []logprobsRow, policyStep *int64, now time.Time) arrow.RecordBatch {
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "rollout_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "logprobs", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: "policy_step", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "temperature", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "created_at", Type: arrowio.TimestampUTC, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	ids := b.Field(0).(*array.StringBuilder)
	lps := b.Field(1).(*array.ListBuilder)
	lpv := lps.ValueBuilder().(*array.Float32Builder)
	steps := b.Field(2).(*array.Int64Builder)
	temps := b.Field(3).(*array.Float64Builder)
	cat := b.Field(4).(*array.TimestampBuilder)
	ts := arrow.Timestamp(now.UnixMicro())
	for _, r := range rows {
		ids.Append(r.id)
		lps.Append(true)
		lpv.AppendValues(r.logp, nil)
		if policyStep != nil {
			steps.Append(*policyStep)
		} else {
			steps.AppendNull()
		}
		temps.Append(r.temp64)
		cat.Append(ts)
	}
	return b.NewRecordBatch()
}
