package env

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// The SQL environment (env := 'sql:NAME'): NAME is a DuckDB macro of the
// job (CREATE MACRO NAME(prompt_id, turn, text, finish, transcript) AS ...)
// that maps a turn to the environment's answer. It is called once per turn
// as
//
//	SELECT NAME(prompt_id VARCHAR, turn INTEGER, text VARCHAR, finish VARCHAR, transcript VARCHAR)
//
// with the episode's prompt_id, the 0-based turn, the turn's text, how it
// ended ('stop', 'eos' or 'length') and the transcript (the prompt, then
// every turn's text and observation, then this turn's text, concatenated
// as the policy saw them). It returns either a VARCHAR, the observation
// (NULL: the episode is done), or a STRUCT with any of the fields
// observation VARCHAR, reward DOUBLE and done BOOLEAN (a NULL done is
// false; a NULL observation is the empty text). The macro may read any
// table or view (the prompts' answer column, say) and must be
// deterministic for the rollout to be.
var sqlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func init() {
	Register("sql", "a DuckDB macro NAME(prompt_id, turn, text, finish, transcript) → observation VARCHAR or STRUCT(observation, reward, done)", newSQLEnv)
}

type sqlEnv struct {
	mu    sync.Mutex // one query at a time on the stage's engine
	cfg   Config
	query string
}

func newSQLEnv(cfg Config) (Env, error) {
	if !sqlName.MatchString(cfg.Spec) {
		return nil, fmt.Errorf("want sql:NAME with NAME a macro name (letters, digits, _), got %q", cfg.Spec)
	}
	if cfg.Engine == nil {
		return nil, fmt.Errorf("no SQL engine")
	}
	q := fmt.Sprintf("SELECT %s(CAST($1 AS VARCHAR), CAST($2 AS INTEGER), CAST($3 AS VARCHAR), CAST($4 AS VARCHAR), CAST($5 AS VARCHAR)) AS r", cfg.Spec)
	return &sqlEnv{cfg: cfg, query: q}, nil
}

func (e *sqlEnv) Close() error { return nil }

// Transcript is the episode's text as the policy saw it: the prompt, then
// every earlier turn's text and observation, then this turn's text.
func Transcript(ep *Episode) string {
	var b strings.Builder
	b.WriteString(ep.Prompt)
	for _, x := range ep.History {
		b.WriteString(x.Text)
		b.WriteString(x.Observation)
	}
	b.WriteString(ep.Text)
	return b.String()
}

func (e *sqlEnv) Step(ctx context.Context, ep *Episode) (Observation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rr, err := e.cfg.Engine.QueryArrow(ctx, e.query, ep.PromptID, ep.Turn, ep.Text, ep.Finish, Transcript(ep))
	if err != nil {
		return Observation{}, fmt.Errorf("macro %s: %w (define it in the job: CREATE MACRO %s(prompt_id, turn, text, finish, transcript) AS ...)", e.cfg.Spec, err, e.cfg.Spec)
	}
	defer rr.Release()
	var obs *Observation
	for rr.Next() {
		rec := rr.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		o, err := decodeSQLObservation(rec.Column(0), 0)
		if err != nil {
			return Observation{}, fmt.Errorf("macro %s: %w", e.cfg.Spec, err)
		}
		obs = &o
		break
	}
	if err := rr.Err(); err != nil {
		return Observation{}, fmt.Errorf("macro %s: %w", e.cfg.Spec, err)
	}
	if obs == nil {
		return Observation{}, fmt.Errorf("macro %s returned no row", e.cfg.Spec)
	}
	return *obs, nil
}

// decodeSQLObservation reads row i of the macro's result column.
func decodeSQLObservation(col arrow.Array, i int) (Observation, error) {
	switch c := col.(type) {
	case *array.String:
		if c.IsNull(i) {
			return Observation{Done: true}, nil
		}
		return Observation{Text: strings.Clone(c.Value(i))}, nil // the record's memory is released after the query
	case *array.Struct:
		if c.IsNull(i) {
			return Observation{Done: true}, nil
		}
		var o Observation
		st := c.DataType().(*arrow.StructType)
		for k, f := range st.Fields() {
			fc := c.Field(k)
			switch strings.ToLower(f.Name) {
			case "observation":
				s, ok := fc.(*array.String)
				if !ok {
					return o, fmt.Errorf("field observation is %s, want VARCHAR", f.Type)
				}
				if !s.IsNull(i) {
					o.Text = strings.Clone(s.Value(i))
				}
			case "reward":
				if fc.IsNull(i) {
					continue
				}
				r, err := numberAt(fc, i)
				if err != nil {
					return o, fmt.Errorf("field reward is %s, want DOUBLE", f.Type)
				}
				o.Reward = &r
			case "done":
				b, ok := fc.(*array.Boolean)
				if !ok {
					return o, fmt.Errorf("field done is %s, want BOOLEAN", f.Type)
				}
				o.Done = !b.IsNull(i) && b.Value(i)
			default:
				return o, fmt.Errorf("unknown field %q in the result (want observation, reward, done)", f.Name)
			}
		}
		return o, nil
	}
	return Observation{}, fmt.Errorf("returned %s, want VARCHAR or STRUCT(observation VARCHAR, reward DOUBLE, done BOOLEAN)", col.DataType())
}

// numberAt reads a numeric value (float, integer or decimal) as float64.
func numberAt(col arrow.Array, i int) (float64, error) {
	switch v := col.(type) {
	case *array.Float64:
		return v.Value(i), nil
	case *array.Float32:
		return float64(v.Value(i)), nil
	case *array.Int32:
		return float64(v.Value(i)), nil
	case *array.Int64:
		return float64(v.Value(i)), nil
	case *array.Decimal128, *array.Decimal256, *array.Int8, *array.Int16:
		return strconv.ParseFloat(col.ValueStr(i), 64)
	}
	return 0, fmt.Errorf("not a number: %s", col.DataType())
}
