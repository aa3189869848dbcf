package arrowio

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Table names of the lake.
const (
	TablePrompts     = "prompts"
	TableRollouts    = "rollouts"
	TableRewards     = "rewards"
	TableMetrics     = "metrics"
	TableCheckpoints = "checkpoints"
)

// Partition key column names. They are never stored in lake files (see the
// package doc); ViewSchema adds them in front of a file schema.
const (
	KeyRun  = "run"
	KeyStep = "step"
)

// managedTables are written only through commit units: a file in them outside
// a unit is a Verify problem. Other table folders (prompts, user tables) may
// also hold user-placed Parquet, reported as unmanaged.
var managedTables = map[string]bool{
	TableRollouts: true, TableRewards: true, TableMetrics: true, TableCheckpoints: true,
}

// TimestampUTC is the type of created_at columns: timestamp[us, tz=UTC]
// (DuckDB TIMESTAMP WITH TIME ZONE).
var TimestampUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func str(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true}
}
func i32(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int32, Nullable: true}
}
func i64(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}
}
func f64(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
}
func boolean(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.FixedWidthTypes.Boolean, Nullable: true}
}
func ts(name string) arrow.Field { return arrow.Field{Name: name, Type: TimestampUTC, Nullable: true} }
func list(name string, elem arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.ListOf(elem), Nullable: true}
}

// PromptsSchema is the prompts table (user data; extra columns pass through
// to rollouts):
//
//	prompt_id VARCHAR, prompt VARCHAR, answer VARCHAR (nullable ground truth), task VARCHAR, split VARCHAR
func PromptsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		str("prompt_id"), str("prompt"), str("answer"), str("task"), str("split"),
	}, nil)
}

// RolloutsSchema is the file schema of the rollouts table (run and step come
// from the path; pass-through prompt columns such as answer and task may
// follow these in a file):
//
//	rollout_id VARCHAR, prompt_id VARCHAR, sample_idx INT32, policy_step INT64,
//	prompt VARCHAR, completion VARCHAR,
//	prompt_tokens LIST<INT32>, completion_tokens LIST<INT32>,
//	logprobs LIST<FLOAT> (behaviour policy, one per completion token),
//	finish_reason VARCHAR ('stop' | 'length'), temperature DOUBLE, seed BIGINT,
//	tag VARCHAR ('train' | 'eval'), created_at TIMESTAMP WITH TIME ZONE (µs)
func RolloutsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		str("rollout_id"), str("prompt_id"), i32("sample_idx"), i64("policy_step"),
		str("prompt"), str("completion"),
		list("prompt_tokens", arrow.PrimitiveTypes.Int32),
		list("completion_tokens", arrow.PrimitiveTypes.Int32),
		list("logprobs", arrow.PrimitiveTypes.Float32),
		str("finish_reason"), f64("temperature"), i64("seed"), str("tag"), ts("created_at"),
	}, nil)
}

// RewardsSchema is the file schema of the rewards table (run and step from
// the path):
//
//	rollout_id VARCHAR, verifier VARCHAR, reward DOUBLE, correct BOOLEAN, extracted VARCHAR
func RewardsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		str("rollout_id"), str("verifier"), f64("reward"), boolean("correct"), str("extracted"),
	}, nil)
}

// MetricsSchema is the file schema of the metrics table, long format, one row
// per scalar (run and step from the path):
//
//	name VARCHAR, value DOUBLE, created_at TIMESTAMP WITH TIME ZONE (µs)
func MetricsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{str("name"), f64("value"), ts("created_at")}, nil)
}

// SchemaFor returns the file schema of a known table (prompts, rollouts,
// rewards, metrics) and false for any other name.
func SchemaFor(table string) (*arrow.Schema, bool) {
	switch table {
	case TablePrompts:
		return PromptsSchema(), true
	case TableRollouts:
		return RolloutsSchema(), true
	case TableRewards:
		return RewardsSchema(), true
	case TableMetrics:
		return MetricsSchema(), true
	}
	return nil, false
}

// ViewSchema is the schema a Hive-partitioned reader sees for a partitioned
// table: run VARCHAR, step BIGINT, then the file columns.
func ViewSchema(file *arrow.Schema) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(file.Fields())+2)
	fields = append(fields,
		arrow.Field{Name: KeyRun, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: KeyStep, Type: arrow.PrimitiveTypes.Int64})
	for _, f := range file.Fields() {
		if f.Name != KeyRun && f.Name != KeyStep {
			fields = append(fields, f)
		}
	}
	return arrow.NewSchema(fields, nil)
}

// ColumnError is a user error: a record lacks a column the target schema
// needs, or has it with another type.
type ColumnError struct {
	Column string
	Want   arrow.DataType // type required by the target schema
	Got    arrow.DataType // nil when the column is missing
}

func (e *ColumnError) Error() string {
	if e.Got == nil {
		return fmt.Sprintf("missing column %q (%s): add it to the query (SELECT ..., NULL::%s AS %s if unknown)",
			e.Column, e.Want, DuckType(e.Want), e.Column)
	}
	return fmt.Sprintf("column %q has type %s, want %s: cast it (%s::%s)",
		e.Column, e.Got, e.Want, e.Column, DuckType(e.Want))
}

// DuckType names an Arrow type of the lake schemas in DuckDB's spelling, for
// casts and error messages; other types get Arrow's own name.
func DuckType(t arrow.DataType) string {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "VARCHAR"
	case arrow.INT32:
		return "INTEGER"
	case arrow.INT64:
		return "BIGINT"
	case arrow.FLOAT32:
		return "FLOAT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.TIMESTAMP:
		return "TIMESTAMPTZ"
	case arrow.LIST:
		return DuckType(t.(*arrow.ListType).Elem()) + "[]"
	}
	return t.String()
}
