package rl

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/trainer/tokenizer"
)

// source renders a table-or-query argument for FROM (jobs.TableSource,
// aliased src). The second result is the form jobs.StageCtx.Columns
// accepts.
func source(v string) (from, cols string) {
	if jobs.IsQuery(v) {
		q := jobs.TableSource(v)
		return q + " AS src", q
	}
	return jobs.TableRef(v) + " AS src", v
}

// columnSet returns the columns of a table-or-query argument, lower-cased
// for lookups, with their spelling as found.
func columnSet(ctx context.Context, sc *jobs.StageCtx, arg, cols string) (map[string]string, []string, error) {
	names, err := sc.Columns(ctx, arg, cols)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]string{}
	for _, n := range names {
		set[strings.ToLower(n)] = n
	}
	return set, names, nil
}

// promptHash is the 64-bit FNV-1a hash of a prompt id, the prompt's part
// of every rollout seed (stable across machines and Go versions).
func promptHash(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64())
}

// metricsRecord builds a metrics table record (name, value, created_at),
// one row per entry, sorted by name so reruns write the same rows.
func metricsRecord(vals map[string]float64, now time.Time) array.RecordReader {
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	sch := arrowio.MetricsSchema()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	ts := arrow.Timestamp(now.UTC().UnixMicro())
	for _, n := range names {
		b.Field(0).(*array.StringBuilder).Append(n)
		b.Field(1).(*array.Float64Builder).Append(vals[n])
		b.Field(2).(*array.TimestampBuilder).Append(ts)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(sch, []arrow.RecordBatch{rec})
	if err != nil {
		panic(err) // schema and record come from the same builder
	}
	return rr
}

// commitMetrics commits vals to this call's metrics unit.
func commitMetrics(ctx context.Context, sc *jobs.StageCtx, vals map[string]float64, now time.Time) (int64, error) {
	rr := metricsRecord(vals, now)
	defer rr.Release()
	return sc.Commit(ctx, arrowio.TableMetrics, rr)
}

// --- reading Arrow columns returned by DuckDB ---------------------------------

type stringArray interface {
	arrow.Array
	Value(i int) string
}

// strAt returns column col's string at row i and whether it is non-NULL.
func strAt(col arrow.Array, i int) (string, bool) {
	if col.IsNull(i) {
		return "", false
	}
	if s, ok := col.(stringArray); ok {
		return strings.Clone(s.Value(i)), true
	}
	return strings.Clone(col.ValueStr(i)), true
}

// f64At returns a DOUBLE column's value at row i and whether it is non-NULL.
func f64At(col arrow.Array, i int) (float64, bool) {
	if col.IsNull(i) {
		return 0, false
	}
	switch c := col.(type) {
	case *array.Float64:
		return c.Value(i), true
	case *array.Float32:
		return float64(c.Value(i)), true
	case *array.Int64:
		return float64(c.Value(i)), true
	case *array.Int32:
		return float64(c.Value(i)), true
	}
	return 0, false
}

// listAt returns the values of a LIST row as an array slice, or nil for
// NULL. The caller reads them with i32s or f32s.
func listAt(col arrow.Array, i int) (arrow.Array, bool) {
	if col.IsNull(i) {
		return nil, false
	}
	switch l := col.(type) {
	case *array.List:
		s, e := l.ValueOffsets(i)
		return array.NewSlice(l.ListValues(), s, e), true
	case *array.LargeList:
		s, e := l.ValueOffsets(i)
		return array.NewSlice(l.ListValues(), s, e), true
	case *array.ListView:
		s, e := l.ValueOffsets(i)
		return array.NewSlice(l.ListValues(), s, e), true
	}
	return nil, false
}

// i32s copies an INTEGER[] row; ok is false for NULL elements or a wrong type.
func i32s(col arrow.Array, i int) ([]int32, bool) {
	v, ok := listAt(col, i)
	if !ok {
		return nil, false
	}
	defer v.Release()
	a, ok := v.(*array.Int32)
	if !ok || a.NullN() > 0 {
		return nil, false
	}
	return append([]int32(nil), a.Int32Values()...), true
}

// f32s copies a FLOAT[] row; ok is false for NULL elements or a wrong type.
func f32s(col arrow.Array, i int) ([]float32, bool) {
	v, ok := listAt(col, i)
	if !ok {
		return nil, false
	}
	defer v.Release()
	a, ok := v.(*array.Float32)
	if !ok || a.NullN() > 0 {
		return nil, false
	}
	return append([]float32(nil), a.Float32Values()...), true
}

// rowsOf reads every record of rr through f(rec, i) in order.
func rowsOf(rr array.RecordReader, f func(rec arrow.RecordBatch, i int) error) error {
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			if err := f(rec, i); err != nil {
				return err
			}
		}
	}
	return rr.Err()
}

// encodePrompt is [BOS] + Encode(text) (BOS only when the tokenizer has one).
func encodePrompt(bos int, ids []int) []int32 {
	out := make([]int32, 0, len(ids)+1)
	if bos >= 0 {
		out = append(out, int32(bos))
	}
	for _, id := range ids {
		out = append(out, int32(id))
	}
	return out
}

// unknownChars collects the characters a character tokenizer cannot encode
// (they become <|unk|>), for one warning per call instead of silence.
type unknownChars struct {
	tok  tokenizer.Tokenizer
	seen map[rune]bool
	rows int
}

// check records the unknown characters of text.
func (u *unknownChars) check(text string) {
	c, ok := u.tok.(*tokenizer.Chars)
	if !ok {
		return
	}
	bad := c.Unknown(text)
	if len(bad) == 0 {
		return
	}
	if u.seen == nil {
		u.seen = map[rune]bool{}
	}
	for _, r := range bad {
		u.seen[r] = true
	}
	u.rows++
}

// warn logs what check found.
func (u *unknownChars) warn(sc *jobs.StageCtx, what string) {
	if u.rows == 0 {
		return
	}
	var rs []rune
	for r := range u.seen {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	sc.Log.Warn().Int("rows", u.rows).Str("characters", strconv.Quote(string(rs))).
		Msgf("%s: characters outside the tokenizer's symbols encode to <|unk|>", what)
}

// stats3 returns mean, max and min of xs (zeros when empty).
func stats3(xs []float64) (mean, hi, lo float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	hi, lo = xs[0], xs[0]
	for _, x := range xs {
		mean += x
		hi = max(hi, x)
		lo = min(lo, x)
	}
	return mean / float64(len(xs)), hi, lo
}

func errf(format string, args ...any) error { return fmt.Errorf("rl: "+format, args...) }
