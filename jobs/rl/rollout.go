package rl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer"
)

// rolloutStage samples completions from a checkpoint.
type rolloutStage struct{}

// genBatch bounds the sequences Generate runs at once (KV-cache memory;
// a finished sequence's slot takes the next one, so the batch stays full)
// and genChunk those of one call (progress and cancellation between
// calls). The sampler is batch-invariant: neither changes any result.
const (
	genBatch = 256
	genChunk = 16 * genBatch
)

func (rolloutStage) Spec() jobs.StageSpec {
	return jobs.StageSpec{
		Name: "rollout",
		Doc: "Sample n completions per prompt from a checkpoint and commit them to the lake table output (default rollouts): " +
			"rollout_id, prompt_id, sample_idx, policy_step, prompt, completion, prompt_tokens, completion_tokens, " +
			"logprobs (behaviour log π of each completion token at the sampling temperature, over the full distribution), " +
			"finish_reason ('stop': EOS or a stop string, included in the tokens; 'length'), temperature, seed, tag, created_at, " +
			"then the prompts' other columns (answer, task, ...). Prompt tokens are [BOS] + encode(prompt) for a string prompt; " +
			"a prompt that is a list of {role, content} messages is rendered with the policy's chat template (add_generation_prompt) and " +
			"the rows keep the rendered text and its ids, and the template's end-of-turn token also stops (docs/chat.md). " +
			"Each sample's seed is DeriveSeed(--seed, step, call, fnv64a(prompt_id), sample_idx) and rollout_id a hash of " +
			"(run, step, call, prompt_id, sample_idx), so the rows do not depend on sharding, batching or threads. " +
			"With env := (docs/episodes.md) each sample is a multi-turn episode: the policy's turn ends at EOS, a stop or max_turn_tokens, the environment " +
			"answers, and its observation's token ids are appended (never re-derived from text) until the environment says done, max_turns or max_new_tokens " +
			"(the whole episode's budget); completion_tokens then hold policy and observation tokens, logprobs is 0 at observation tokens, and the rows add " +
			"policy_mask, turn_offsets, num_turns and env_reward; finish_reason may also be 'max_turns' or 'timeout'; one row per turn goes to the turns table. " +
			"Sharded: handles prompts with hash(prompt_id) % num_shards = shard. No prompts: nothing committed.",
		Sharded: true,
		Args: []jobs.ArgSpec{
			{Name: "prompts", Type: jobs.TypeTable, Required: true, Doc: "table (or query) with prompt_id and prompt, plus columns to pass through; prompt_id must be unique"},
			{Name: "policy", Type: jobs.TypeString, Default: "latest", Doc: policyDoc},
			dtypeArgSpec(""),
			{Name: "n", Type: jobs.TypeInt, Default: int64(1), Doc: "samples per prompt (the GRPO group size)"},
			{Name: "max_new_tokens", Type: jobs.TypeInt, Default: int64(64), Doc: "completion length bound (also cut at max_position_embeddings)"},
			{Name: "temperature", Type: jobs.TypeFloat, Default: 1.0, Doc: "sampling temperature; 0 = greedy (logprobs then at temperature 1)"},
			{Name: "top_p", Type: jobs.TypeFloat, Default: 1.0, Doc: "nucleus sampling mass in (0, 1]; 1 = off"},
			{Name: "top_k", Type: jobs.TypeInt, Default: int64(0), Doc: "keep the k most probable tokens; 0 = off"},
			{Name: "stop", Type: jobs.TypeString, Doc: "a stop string: the completion (with env: the policy's turn) ends once its text contains it (kept in the completion); EOS always stops"},
			{Name: "stop_tokens", Type: jobs.TypeString, Doc: "comma-separated token ids that also end the completion (with env: the turn), kept in it, e.g. '151657'"},
			{Name: "env", Type: jobs.TypeString, Doc: "multi-turn episodes: the environment that answers each policy turn, 'calculator' or 'sql:MACRO' (docs/episodes.md); the rows then carry policy_mask, turn_offsets, num_turns and env_reward, and each turn is a row of the turns table"},
			{Name: "max_turns", Type: jobs.TypeInt, Default: int64(4), Doc: "with env: policy turns per episode at most"},
			{Name: "max_turn_tokens", Type: jobs.TypeInt, DefaultDoc: "max_new_tokens", Doc: "with env: tokens of one policy turn at most (max_new_tokens bounds the whole episode, observations included)"},
			{Name: "turn_timeout", Type: jobs.TypeFloat, Default: 30.0, Doc: "with env: seconds an environment call may take; a call that overruns it ends its episode (finish_reason and turns.status 'timeout')"},
			{Name: "timeout_reward", Type: jobs.TypeFloat, Doc: "with env: turns.reward of a timed-out turn (default NULL)"},
			{Name: "turns", Type: jobs.TypeString, Default: "turns", Doc: "with env: lake table of the turns (rollout_id, turn, text, observation, reward, status, latency_s, ...)"},
			{Name: "tag", Type: jobs.TypeString, Default: "train", Doc: "written to the tag column: 'train' (on-policy samples the step trains on), 'eval', or any label (lake gc keeps the checkpoints that sampled rollouts of a tag other than train)"},
			{Name: "chat_kwargs", Type: jobs.TypeString, Doc: `chat prompts: extra chat-template variables as a JSON object, e.g. '{"enable_thinking": false}'`},
			{Name: "output", Type: jobs.TypeString, Default: arrowio.TableRollouts, Doc: "lake table to write (another table than rollouts keeps, say, evaluation samples apart; it gets the same columns)"},
		},
		Outputs: func(a jobs.Args) []string {
			if a.Has("env") {
				return []string{a.String("output"), a.String("turns")}
			}
			return []string{a.String("output")}
		},
		Check: func(a jobs.Args) (string, string) {
			if msg, hint := jobs.CheckOutputTable(a.String("output")); msg != "" {
				return msg, hint
			}
			if msg, hint := checkEpisodeArgs(a); msg != "" {
				return msg, hint
			}
			switch {
			case strings.TrimSpace(a.String("tag")) == "" || strings.ContainsAny(a.String("tag"), "\n\r\t"):
				return "tag must be a non-empty one-line label", "tag := 'train', 'eval' or any label such as 'eval_gsm8k'"
			case a.Int("n") < 1:
				return "n must be >= 1", "n := 8"
			case a.Int("max_new_tokens") < 1:
				return "max_new_tokens must be >= 1", "max_new_tokens := 64"
			case a.Float("temperature") < 0:
				return "temperature must be >= 0", "temperature := 1.0 (0 = greedy)"
			case a.Float("top_p") <= 0 || a.Float("top_p") > 1:
				return "top_p must be in (0, 1]", "top_p := 1.0 turns it off"
			case a.Int("top_k") < 0:
				return "top_k must be >= 0", "top_k := 0 turns it off"
			case a.Has("stop") && a.String("stop") == "":
				return "stop is empty", "remove stop, or give a non-empty string"
			}
			return "", ""
		},
	}
}

// rolloutRowBytes is the memory of one rollouts row apart from its tokens:
// the Go row, its ids, its Arrow copy and DuckDB's copy for the join with
// the prompts' columns (generous: the estimate only has to catch a plan
// that cannot fit, such as n := 1000000000).
const rolloutRowBytes = 512

// checkRolloutMemory refuses, before anything is allocated per sample, a
// rollout whose rows cannot fit in memory: n samples of each of prompts
// prompts (promptBytes: their total length), each with up to max_new_tokens
// completion tokens held as token, logprob and text in the Go rows, the
// Arrow record and DuckDB (about 24 bytes a token), and its prompt's
// tokens copied into its row (12 bytes a prompt byte).
func checkRolloutMemory(a jobs.Args, prompts int, promptBytes float64) error {
	n, maxNew := float64(a.Int("n")), float64(a.Int("max_new_tokens"))
	rows := n * float64(prompts)
	need := rows*(rolloutRowBytes+24*maxNew) + n*12*promptBytes
	what := fmt.Sprintf("n := %d samples × %d prompts = %.0f completions of up to max_new_tokens := %d tokens", a.Int("n"), prompts, rows, a.Int("max_new_tokens"))
	return jobs.CheckMemory(a.Pos("n"), "rollout", what, need,
		"lower n or max_new_tokens, or spread the prompts over several steps or shards (--shard i/n)")
}

// promptRow is one prompt of the call.
type promptRow struct{ id, text string }

// rolloutOut are the generated columns of one rollouts row.
type rolloutOut struct {
	promptID   string
	sampleIdx  int32
	prompt     string
	promptToks []int32
	seed       uint64
	sample     trainer.Sample
	episode    *episodeOut // with env
}

// Run samples, for every prompt of this shard in prompt_id order and every
// sample_idx < n, one completion from the policy at the given temperature
// (top-k, then top-p), stopping at EOS, a stop string or max_new_tokens, and
// commits the rows ordered by (prompt_id, sample_idx).
func (rolloutStage) Run(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) (jobs.Summary, error) {
	t0 := time.Now()
	created := t0.UTC()
	n := int(a.Int("n"))

	// Inputs: prompts of this shard, and the policy.
	from, colsRef := source(a.String("prompts"))
	if err := sc.RequireColumns(ctx, "prompts", colsRef, "prompt_id", "prompt"); err != nil {
		return jobs.Summary{}, err
	}
	if err := checkUniquePromptIDs(ctx, sc, a, from); err != nil {
		return jobs.Summary{}, err
	}
	promptSQL, isChat, err := promptExpr(ctx, sc, a, "prompts", from)
	if err != nil {
		return jobs.Summary{}, err
	}
	q := fmt.Sprintf("SELECT CAST(prompt_id AS VARCHAR) AS prompt_id, %s AS prompt FROM %s WHERE %s ORDER BY 1",
		promptSQL, from, sc.ShardPredicate("prompt_id"))
	var prompts []promptRow
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return jobs.Summary{}, jobs.ClassifySQL(err, a.Pos("prompts"), q)
	}
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		id, ok1 := strAt(rec.Column(0), i)
		text, ok2 := strAt(rec.Column(1), i)
		if !ok1 || !ok2 {
			col := "prompt_id"
			if ok1 {
				col = "prompt"
			}
			return &jobs.DataError{Pos: a.Pos("prompts"), Msg: fmt.Sprintf("rollout: prompts has a NULL %s (prompt_id %q)", col, id), Column: col,
				Hint: "filter NULLs out of the prompts table"}
		}
		prompts = append(prompts, promptRow{id, text})
		return nil
	})
	rr.Release()
	if err != nil {
		return jobs.Summary{}, jobs.ClassifySQL(err, a.Pos("prompts"), q)
	}
	if len(prompts) == 0 {
		return jobs.Summary{Table: a.String("output"), Skipped: true,
			Note: fmt.Sprintf("rollout: no prompts for shard %d/%d: nothing committed", sc.Shard, sc.NumShards)}, nil
	}
	var textBytes float64
	for _, p := range prompts {
		textBytes += float64(len(p.text) + 1)
	}
	if err := checkRolloutMemory(a, len(prompts), textBytes); err != nil {
		return jobs.Summary{}, err
	}
	pol, err := loadSamplingPolicy(sc, a, "policy")
	if err != nil {
		return jobs.Summary{}, err
	}
	defer releaseModel(pol.Model) // its buffers go to the next stage's model (a cached light checkpoint stays)
	defer logMemory(sc, "sampled")
	logMemory(sc, "policy loaded")

	// Checks: sampling options against the tokenizer and the model.
	tok, model := pol.Tok, pol.Model
	enc, err := newPromptEncoder(sc, a, pol, isChat)
	if err != nil {
		return jobs.Summary{}, err
	}
	opt := trainer.SampleOptions{
		Temperature:  a.Float("temperature"),
		TopK:         int(a.Int("top_k")),
		TopP:         a.Float("top_p"),
		MaxNewTokens: int(a.Int("max_new_tokens")),
		MaxBatch:     genBatch,
	}
	vocab := model.Config.VocabSize
	if model.VocabLimit > 0 && model.VocabLimit < vocab {
		vocab = model.VocabLimit // a padded embedding's extra ids are never sampled
	}
	userStops, err := parseStopTokens(a, vocab)
	if err != nil {
		return jobs.Summary{}, err
	}
	opt.StopTokens = append(enc.stopTokens(), userStops...)
	if a.Has("stop") {
		opt.StopStrings = []string{a.String("stop")}
		opt.Decode = tok.Decode
	}

	// Work: encode, seed and sample, in chunks of whole prompts.
	outs, err := rolloutOuts(sc, a, enc, model, prompts, n)
	if err != nil {
		return jobs.Summary{}, err
	}
	if err := sampleRollouts(ctx, sc, a, pol, opt, userStops, outs); err != nil {
		return jobs.Summary{}, err
	}

	// Outputs: the generated columns, joined in SQL with the prompts'
	// pass-through columns.
	gen := rolloutRecord(sc, a, pol, enc.stopTokens(), tok.Decode, outs, created)
	defer gen.Release()
	rows, err := commitRollouts(ctx, sc, a, gen, from, colsRef)
	if err != nil {
		return jobs.Summary{}, err
	}
	if err := commitTurns(ctx, sc, a, outs, created); err != nil {
		return jobs.Summary{}, err
	}

	// Summary.
	return rolloutSummary(a, outs, len(prompts), rows, pol.Step, time.Since(t0).Seconds()), nil
}

// rolloutOuts encodes the prompts and lays out the n samples of each, with
// their seeds, in (prompt_id, sample_idx) order.
func rolloutOuts(sc *jobs.StageCtx, a jobs.Args, enc *promptEncoder, model *trainer.Model, prompts []promptRow, n int) ([]rolloutOut, error) {
	var outs []rolloutOut
	unk := unknownChars{tok: enc.tok}
	for _, p := range prompts {
		text, toks, err := enc.encode(a, p.id, p.text)
		if err != nil {
			return nil, err
		}
		unk.check(text)
		if len(toks) == 0 {
			return nil, &jobs.DataError{Pos: a.Pos("prompts"), Msg: fmt.Sprintf("rollout: prompt %q encodes to no tokens and the tokenizer has no BOS", p.id), Column: "prompt"}
		}
		if len(toks) >= model.Config.MaxPositionEmbeddings {
			return nil, &jobs.DataError{Pos: a.Pos("prompts"),
				Msg:    fmt.Sprintf("rollout: prompt %q has %d tokens, no room under max_position_embeddings %d", p.id, len(toks), model.Config.MaxPositionEmbeddings),
				Column: "prompt", Hint: "shorten the prompt or use a model with more positions"}
		}
		for k := range n {
			seed := uint64(jobs.DeriveSeed(sc.Seed, sc.Step, int64(sc.Call), promptHash(p.id), int64(k)))
			outs = append(outs, rolloutOut{promptID: p.id, sampleIdx: int32(k), prompt: text, promptToks: toks, seed: seed})
		}
	}
	unk.warn(sc, "rollout: prompts")
	return outs, nil
}

// sampleRollouts samples every out, in chunks of genChunk (progress and
// cancellation between chunks): one completion each, or with env one
// episode each.
func sampleRollouts(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, pol *policy, opt trainer.SampleOptions, userStops []int, outs []rolloutOut) error {
	var eps *episodeRunner
	if a.Has("env") {
		var err error
		if eps, err = newEpisodeRunner(sc, a, pol, userStops); err != nil {
			return err
		}
		defer eps.env.Close()
	}
	eopt := trainer.EpisodeOptions{SampleOptions: opt, MaxTurnTokens: int(a.Int("max_turn_tokens"))}
	bar := sc.Bar("rollout", int64(len(outs)))
	defer bar.Done()
	for lo := 0; lo < len(outs); lo += genChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+genChunk, len(outs))
		if eps != nil {
			if err := eps.run(ctx, pol.Model, eopt, outs[lo:hi]); err != nil {
				var de *jobs.DataError
				if errors.As(err, &de) || errors.Is(err, context.Canceled) {
					return err
				}
				return &jobs.UsageError{Pos: a.CallPos(), Msg: "rollout: " + err.Error()}
			}
			bar.Add(int64(hi - lo))
			continue
		}
		ps := make([][]int32, 0, hi-lo)
		seeds := make([]uint64, 0, hi-lo)
		for _, o := range outs[lo:hi] {
			ps = append(ps, o.promptToks)
			seeds = append(seeds, o.seed)
		}
		samples, err := pol.Model.Generate(ps, seeds, opt)
		if de := (*trainer.DeviceError)(nil); errors.As(err, &de) {
			return fmt.Errorf("rollout: %w", err) // the machine's fault: exit 1
		} else if err != nil {
			return &jobs.UsageError{Pos: a.CallPos(), Msg: "rollout: " + err.Error()}
		}
		for j := range samples {
			outs[lo+j].sample = samples[j]
		}
		bar.Add(int64(hi - lo))
	}
	return nil
}

// rolloutSummary is the call's summary: lengths, stops and throughput, and
// with env the turns per episode, the observation tokens, the environment's
// time (summed over calls) and its timeouts.
func rolloutSummary(a jobs.Args, outs []rolloutOut, prompts int, rows int64, policyStep int64, secs float64) jobs.Summary {
	var toks, stopped int
	for _, o := range outs {
		toks += len(o.sample.Tokens)
		if o.sample.FinishReason == trainer.FinishStop {
			stopped++
		}
	}
	m := map[string]float64{
		"prompts":         float64(prompts),
		"mean_length":     float64(toks) / float64(len(outs)),
		"stop_fraction":   float64(stopped) / float64(len(outs)),
		"tokens_per_s":    float64(toks) / max(secs, 1e-9),
		"policy_step":     float64(policyStep),
		"completion_toks": float64(toks),
	}
	if a.Has("env") {
		var turns, obs, timeouts int
		var envSecs float64
		for _, o := range outs {
			for _, t := range o.episode.turns {
				turns++
				obs += t.obsToks
				if t.latency != nil {
					envSecs += *t.latency
				}
				if t.status == statusTimeout {
					timeouts++
				}
			}
		}
		m["mean_turns"] = float64(turns) / float64(len(outs))
		m["observation_toks"] = float64(obs)
		m["env_seconds"] = envSecs
		m["env_timeouts"] = float64(timeouts)
	}
	return jobs.Summary{Table: a.String("output"), Rows: rows, Metrics: m}
}

// checkUniquePromptIDs rejects a prompts table whose prompt_id repeats
// (groups, seeds and rollout ids are keyed by it).
func checkUniquePromptIDs(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, from string) error {
	q := "SELECT CAST(prompt_id AS VARCHAR), count(*) FROM " + from + " GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1"
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return jobs.ClassifySQL(err, a.Pos("prompts"), q)
	}
	defer rr.Release()
	var dup string
	var found bool
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		dup, _ = strAt(rec.Column(0), i)
		found = true
		return nil
	})
	if err != nil {
		return jobs.ClassifySQL(err, a.Pos("prompts"), q)
	}
	if found {
		return &jobs.DataError{Pos: a.Pos("prompts"), Msg: fmt.Sprintf("rollout: prompt_id %q appears more than once in prompts", dup), Column: "prompt_id",
			Hint: "use n := k for k samples per prompt instead of repeating rows; SELECT DISTINCT or dedupe by prompt_id"}
	}
	return nil
}

// rolloutID is the hex of the first 16 bytes of
// sha256(run \x00 step \x00 call \x00 prompt_id \x00 sample_idx).
func rolloutID(run string, step int64, call int, promptID string, k int32) string {
	h := sha256.New()
	for _, s := range []string{run, strconv.FormatInt(step, 10), strconv.Itoa(call), promptID, strconv.Itoa(int(k))} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// rolloutRecord builds the generated columns (arrowio.RolloutsSchema) of
// outs.
func rolloutRecord(sc *jobs.StageCtx, a jobs.Args, pol *policy, stops []int, decode func([]int) string, outs []rolloutOut, created time.Time) arrow.RecordBatch {
	sch := arrowio.RolloutsSchema()
	if a.Has("env") {
		sch = arrow.NewSchema(append(sch.Fields(), episodeFields()...), nil)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	temp, tag := a.Float("temperature"), a.String("tag")
	ts := arrow.Timestamp(created.UnixMicro())
	ids := make([]int, 0, 64)
	for _, o := range outs {
		s := o.sample
		ids = ids[:0]
		for j, t := range s.Tokens {
			if j == len(s.Tokens)-1 && slices.Contains(stops, int(t)) && s.FinishReason == trainer.FinishStop {
				break // the EOS (or end of turn) that ended it is a token, not text
			}
			ids = append(ids, int(t))
		}
		b.Field(0).(*array.StringBuilder).Append(rolloutID(sc.Run, sc.Step, sc.Call, o.promptID, o.sampleIdx))
		b.Field(1).(*array.StringBuilder).Append(o.promptID)
		b.Field(2).(*array.Int32Builder).Append(o.sampleIdx)
		if ps := pol.PolicyStep(); ps != nil {
			b.Field(3).(*array.Int64Builder).Append(*ps)
		} else {
			b.Field(3).AppendNull()
		}
		b.Field(4).(*array.StringBuilder).Append(o.prompt)
		b.Field(5).(*array.StringBuilder).Append(decode(ids))
		appendList(b.Field(6).(*array.ListBuilder), o.promptToks, nil)
		appendList(b.Field(7).(*array.ListBuilder), s.Tokens, nil)
		appendList(b.Field(8).(*array.ListBuilder), nil, s.Logprobs)
		b.Field(9).(*array.StringBuilder).Append(s.FinishReason)
		b.Field(10).(*array.Float64Builder).Append(temp)
		b.Field(11).(*array.Int64Builder).Append(int64(o.seed))
		b.Field(12).(*array.StringBuilder).Append(tag)
		b.Field(13).(*array.TimestampBuilder).Append(ts)
		if o.episode != nil {
			appendEpisode(b, 14, &o)
		}
	}
	return b.NewRecordBatch()
}

func appendList(lb *array.ListBuilder, i32 []int32, f32 []float32) {
	lb.Append(true)
	switch vb := lb.ValueBuilder().(type) {
	case *array.Int32Builder:
		vb.AppendValues(i32, nil)
	case *array.Float32Builder:
		vb.AppendValues(f32, nil)
	}
}

// commitRollouts commits gen, with the prompts' other columns appended
// (joined on prompt_id in SQL), as this call's rollouts unit.
func commitRollouts(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, gen arrow.RecordBatch, from, colsRef string) (int64, error) {
	_, cols, err := columnSet(ctx, sc, "prompts", colsRef)
	if err != nil {
		return 0, err
	}
	own := map[string]bool{arrowio.KeyRun: true, arrowio.KeyStep: true}
	for _, f := range append(arrowio.RolloutsSchema().Fields(), episodeFields()...) {
		own[f.Name] = true
	}
	var extra []string
	for _, c := range cols {
		if !own[strings.ToLower(c)] {
			extra = append(extra, "p."+jobs.QuoteIdent(c))
		}
	}
	genRR, err := array.NewRecordReader(gen.Schema(), []arrow.RecordBatch{gen})
	if err != nil {
		return 0, err
	}
	defer genRR.Release()
	if len(extra) == 0 {
		return sc.Commit(ctx, a.String("output"), genRR)
	}
	const view = "__rljob_rollout_gen"
	release, err := sc.Engine.RegisterArrowView(view, genRR)
	if err != nil {
		return 0, err
	}
	defer release()
	q := fmt.Sprintf(`SELECT g.*, %s FROM %s AS g JOIN (SELECT * FROM %s) AS p ON g.prompt_id = CAST(p.prompt_id AS VARCHAR)
ORDER BY g.prompt_id, g.sample_idx`, strings.Join(extra, ", "), view, from)
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return 0, jobs.ClassifySQL(err, a.Pos("prompts"), q)
	}
	defer rr.Release()
	return sc.Commit(ctx, a.String("output"), rr)
}
