package rl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/jobs/env"
)

// checkEpisodeArgs is rollout's Check of the multi-turn arguments.
func checkEpisodeArgs(a jobs.Args) (string, string) {
	if !a.Has("env") {
		for _, n := range episodeArgs {
			if a.Given(n) {
				return n + " needs env", "add env := 'calculator' (or another environment), or drop " + n
			}
		}
		return "", ""
	}
	switch {
	case !env.Known(a.String("env")):
		name, _ := env.Parse(a.String("env"))
		return fmt.Sprintf("env %q is not a known environment", name), "one of: " + strings.Join(env.Names(), "; ")
	case a.Int("max_turns") < 1:
		return "max_turns must be >= 1", "max_turns := 4"
	case a.Has("max_turn_tokens") && a.Int("max_turn_tokens") < 1:
		return "max_turn_tokens must be >= 1", "max_turn_tokens := 64, or leave it out (max_new_tokens)"
	case !(a.Float("turn_timeout") > 0):
		return "turn_timeout must be > 0 seconds", "turn_timeout := 30"
	case !validTableName(a.String("turns")) || a.String("turns") == a.String("output"):
		return fmt.Sprintf("turns %q must be a table name other than output", a.String("turns")), "turns := 'turns'"
	}
	return "", ""
}

// episodeFields are the rollouts columns of an episode row, after
// arrowio.RolloutsSchema's: the policy mask (one per completion token:
// true where the policy sampled it, false for observation tokens), the
// index in completion_tokens where each policy turn starts, the number of
// turns and the sum of the turns' rewards (NULL when none gave one).
func episodeFields() []arrow.Field {
	return []arrow.Field{
		{Name: "policy_mask", Type: arrow.ListOf(arrow.FixedWidthTypes.Boolean), Nullable: true},
		{Name: "turn_offsets", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "num_turns", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "env_reward", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}
}

// appendEpisode appends o's episode columns to b from field k on.
func appendEpisode(b *array.RecordBuilder, k int, o *rolloutOut) {
	e := o.episode
	mask := b.Field(k).(*array.ListBuilder)
	mask.Append(true)
	mask.ValueBuilder().(*array.BooleanBuilder).AppendValues(e.ep.Policy, nil)
	appendList(b.Field(k+1).(*array.ListBuilder), e.ep.TurnStarts, nil)
	b.Field(k + 2).(*array.Int32Builder).Append(int32(len(e.turns)))
	var sum float64
	some := false
	for _, t := range e.turns {
		if t.reward != nil {
			sum, some = sum+*t.reward, true
		}
	}
	if some {
		b.Field(k + 3).(*array.Float64Builder).Append(sum)
	} else {
		b.Field(k + 3).AppendNull()
	}
}

// turnsSchema is the turns table: one row per policy turn of an episode.
func turnsSchema() *arrow.Schema {
	s := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	i := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Int32, Nullable: true}
	}
	f := func(n string) arrow.Field {
		return arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	return arrow.NewSchema([]arrow.Field{
		s("rollout_id"), s("prompt_id"), i("sample_idx"), i("turn"), s("text"), s("finish"),
		s("observation"), f("reward"), s("status"), f("latency_s"), i("policy_tokens"), i("observation_tokens"),
		s("tag"), {Name: "created_at", Type: arrowio.TimestampUTC, Nullable: true},
	}, nil)
}

// commitTurns commits the turns of outs' episodes to the turns table
// (nothing without env).
func commitTurns(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, outs []rolloutOut, created time.Time) error {
	if !a.Has("env") {
		return nil
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, turnsSchema())
	defer b.Release()
	ts := arrow.Timestamp(created.UnixMicro())
	str := func(k int, v *string) {
		if v == nil {
			b.Field(k).AppendNull()
		} else {
			b.Field(k).(*array.StringBuilder).Append(*v)
		}
	}
	flt := func(k int, v *float64) {
		if v == nil {
			b.Field(k).AppendNull()
		} else {
			b.Field(k).(*array.Float64Builder).Append(*v)
		}
	}
	tag := a.String("tag")
	for i := range outs {
		o := &outs[i]
		id := rolloutID(sc.Run, sc.Step, sc.Call, o.promptID, o.sampleIdx)
		for _, t := range o.episode.turns {
			b.Field(0).(*array.StringBuilder).Append(id)
			b.Field(1).(*array.StringBuilder).Append(o.promptID)
			b.Field(2).(*array.Int32Builder).Append(o.sampleIdx)
			b.Field(3).(*array.Int32Builder).Append(int32(t.turn))
			b.Field(4).(*array.StringBuilder).Append(t.text)
			b.Field(5).(*array.StringBuilder).Append(t.finish)
			str(6, t.observation)
			flt(7, t.reward)
			b.Field(8).(*array.StringBuilder).Append(t.status)
			flt(9, t.latency)
			b.Field(10).(*array.Int32Builder).Append(int32(t.policyToks))
			b.Field(11).(*array.Int32Builder).Append(int32(t.obsToks))
			b.Field(12).(*array.StringBuilder).Append(tag)
			b.Field(13).(*array.TimestampBuilder).Append(ts)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return err
	}
	defer rr.Release()
	_, err = sc.Commit(ctx, a.String("turns"), rr)
	return err
}
