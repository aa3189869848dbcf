package arrowio

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// syntheticBatchRows is the record size SyntheticRollouts yields.
const syntheticBatchRows = 16 * 1024

// syntheticGroup is the number of samples per prompt (GRPO group size).
const syntheticGroup = 8

// SyntheticRollouts returns n synthetic rows of RolloutsSchema as a
// streaming reader of 16Ki-row records, the same bytes for the same (n,
// seed). Shapes: groups of 8 samples per prompt; prompt_tokens and
// completion_tokens have 20–60 tokens in [0, 151936); logprobs has one value
// in (-8, 0] per completion token; completion text is 100–400 bytes. Batch b
// draws from its own PCG stream seeded by (seed, b), so batches can be
// generated independently. Used by BenchmarkWriteRollouts and by package
// sql's comparison against DuckDB's COPY TO.
func SyntheticRollouts(n int, seed int64) array.RecordReader {
	return &syntheticReader{n: n, seed: seed, sch: RolloutsSchema(), refs: 1}
}

type syntheticReader struct {
	n, next int
	batch   uint64
	seed    int64
	sch     *arrow.Schema
	cur     arrow.RecordBatch
	refs    int64
}

func (r *syntheticReader) Schema() *arrow.Schema { return r.sch }
func (r *syntheticReader) Retain()               { r.refs++ }
func (r *syntheticReader) Release() {
	if r.refs--; r.refs <= 0 && r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}
func (r *syntheticReader) Err() error                     { return nil }
func (r *syntheticReader) Record() arrow.RecordBatch      { return r.cur }
func (r *syntheticReader) RecordBatch() arrow.RecordBatch { return r.cur }

func (r *syntheticReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.next >= r.n {
		return false
	}
	rows := min(syntheticBatchRows, r.n-r.next)
	r.cur = syntheticBatch(r.sch, r.seed, r.batch, r.next, rows)
	r.next += rows
	r.batch++
	return true
}

var syntheticWords = []string{
	"the", "answer", "is", "so", "we", "have", "then", "total", "each", "of", "and", "step",
	"first", "compute", "therefore", "apples", "minus", "plus", "times", "equals", "left", "=",
}

// syntheticBatch builds rows [first, first+rows) of the synthetic table with
// Arrow buffers filled in place (no per-row allocation).
func syntheticBatch(sch *arrow.Schema, seed int64, batch uint64, first, rows int) arrow.RecordBatch {
	pcg := rand.NewPCG(uint64(seed), batch^0x9e3779b97f4a7c15)
	rng := rand.New(pcg)
	var (
		rolloutID, promptID, prompt, completion, finish, tag stringCol
		pTok, cTok                                           listCol[int32]
		logp                                                 listCol[float32]
		sampleIdx                                            = make([]int32, rows)
		policyStep, seeds, created                           = make([]int64, rows), make([]int64, rows), make([]int64, rows)
		temperature                                          = make([]float64, rows)
	)
	rolloutID.init(rows, rows*10)
	promptID.init(rows, rows*8)
	prompt.init(rows, rows*200)
	completion.init(rows, rows*420)
	finish.init(rows, rows*6)
	tag.init(rows, rows*5)
	pTok.init(rows, rows*60)
	cTok.init(rows, rows*60)
	logp.init(rows, rows*60)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

	var scratch []byte
	var groupTokens []int32
	for i := range rows {
		row := first + i
		group, sample := row/syntheticGroup, row%syntheticGroup
		scratch = strconv.AppendInt(append(scratch[:0], 'r'), int64(row), 10)
		rolloutID.add(scratch)
		scratch = strconv.AppendInt(append(scratch[:0], 'p'), int64(group), 10)
		promptID.add(scratch)
		// The prompt (text and tokens) is shared by the group, as in GRPO.
		if sample == 0 || i == 0 {
			grng := rand.New(rand.NewPCG(uint64(seed), uint64(group)))
			groupTokens = groupTokens[:0]
			for range 20 + grng.IntN(41) {
				groupTokens = append(groupTokens, int32(grng.Uint64()&0xffffffff*151936>>32))
			}
			scratch = append(scratch[:0], "Question "...)
			scratch = strconv.AppendInt(scratch, int64(group), 10)
			scratch = append(scratch, ": Natalia sold clips to "...)
			scratch = strconv.AppendInt(scratch, int64(grng.IntN(100)), 10)
			scratch = append(scratch, " of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?"...)
			prompt.pending = append(prompt.pending[:0], scratch...)
		}
		prompt.add(prompt.pending)
		pTok.add(groupTokens)

		scratch = scratch[:0]
		for target := 100 + rng.IntN(301); len(scratch) < target; {
			if len(scratch) > 0 {
				scratch = append(scratch, ' ')
			}
			x := pcg.Uint64()
			if x%5 == 0 {
				scratch = strconv.AppendInt(scratch, int64(x>>32%1000), 10)
			} else {
				scratch = append(scratch, syntheticWords[x>>32%uint64(len(syntheticWords))]...)
			}
		}
		completion.add(scratch)

		nc := 20 + rng.IntN(41)
		for range nc {
			// One 64-bit draw gives a token (Lemire's multiply-shift on the low
			// 32 bits) and a logprob (the top 24 bits): a third of the cost of
			// two rand.Rand calls.
			x := pcg.Uint64()
			cTok.values = append(cTok.values, int32((x&0xffffffff)*151936>>32))
			logp.values = append(logp.values, -8*float32(x>>40)/(1<<24))
		}
		cTok.end()
		logp.end()

		if nc == 60 {
			finish.add([]byte("length"))
		} else {
			finish.add([]byte("stop"))
		}
		tag.add([]byte("train"))
		sampleIdx[i] = int32(sample)
		policyStep[i] = int64(row / 4096)
		seeds[i] = int64(rng.Uint64() >> 1)
		temperature[i] = 1.0
		created[i] = base + int64(row)
	}
	cols := []arrow.Array{
		rolloutID.array(), promptID.array(), primitive(arrow.PrimitiveTypes.Int32, sampleIdx),
		primitive(arrow.PrimitiveTypes.Int64, policyStep), prompt.array(), completion.array(),
		pTok.array(arrow.PrimitiveTypes.Int32), cTok.array(arrow.PrimitiveTypes.Int32),
		logp.array(arrow.PrimitiveTypes.Float32), finish.array(),
		primitive(arrow.PrimitiveTypes.Float64, temperature), primitive(arrow.PrimitiveTypes.Int64, seeds),
		tag.array(), primitive(TimestampUTC, created),
	}
	rec := array.NewRecordBatch(sch, cols, int64(rows))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// stringCol accumulates a non-null string column as Arrow offsets + bytes.
type stringCol struct {
	offsets []int32
	data    []byte
	pending []byte
}

func (c *stringCol) init(rows, bytes int) {
	c.offsets = make([]int32, 1, rows+1)
	c.data = make([]byte, 0, bytes)
}
func (c *stringCol) add(b []byte) {
	c.data = append(c.data, b...)
	c.offsets = append(c.offsets, int32(len(c.data)))
}
func (c *stringCol) array() arrow.Array {
	d := array.NewData(arrow.BinaryTypes.String, len(c.offsets)-1,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offsets)), memory.NewBufferBytes(c.data)},
		nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// listCol accumulates a non-null list<T> column.
type listCol[T int32 | float32] struct {
	offsets []int32
	values  []T
}

func (c *listCol[T]) init(rows, values int) {
	c.offsets = make([]int32, 1, rows+1)
	c.values = make([]T, 0, values)
}
func (c *listCol[T]) add(v []T) {
	c.values = append(c.values, v...)
	c.offsets = append(c.offsets, int32(len(c.values)))
}

// end closes a list whose values were appended to c.values directly.
func (c *listCol[T]) end() { c.offsets = append(c.offsets, int32(len(c.values))) }

func (c *listCol[T]) array(elem arrow.DataType) arrow.Array {
	child := primitiveData(elem, c.values)
	defer child.Release()
	d := array.NewData(arrow.ListOf(elem), len(c.offsets)-1,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offsets))},
		[]arrow.ArrayData{child}, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func primitiveData[T int32 | int64 | float32 | float64](t arrow.DataType, v []T) arrow.ArrayData {
	return array.NewData(t, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(v))}, nil, 0, 0)
}

func primitive[T int32 | int64 | float32 | float64](t arrow.DataType, v []T) arrow.Array {
	d := primitiveData(t, v)
	defer d.Release()
	return array.MakeFromData(d)
}
