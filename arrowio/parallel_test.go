package arrowio

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestParallelMatchesPqarrow checks the parallel column writer against its
// reference, pqarrow's sequential FileWriter: the files must be identical
// byte for byte, for 1 and 4 workers.
func TestParallelMatchesPqarrow(t *testing.T) {
	edge := arrow.NewSchema([]arrow.Field{
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "ls", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "req", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32), Nullable: false},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: false},
	}, nil)
	edgeRows := `[
		{"l": [1, null, 3], "ls": ["a", null], "req": [1.5], "s": "x", "b": true, "i": 1},
		{"l": null, "ls": [], "req": [], "s": null, "b": null, "i": 2},
		{"l": [], "ls": null, "req": [2, 3], "s": "", "b": false, "i": 3},
		{"l": [null], "ls": [null, null, "zz"], "req": [4], "s": "yy", "b": true, "i": 4}]`

	type input struct {
		name string
		sch  *arrow.Schema
		recs func(t *testing.T) []arrow.RecordBatch
	}
	fromJSON := func(sch *arrow.Schema, js string, copies int, slice bool) func(t *testing.T) []arrow.RecordBatch {
		return func(t *testing.T) []arrow.RecordBatch {
			rec := recordFromJSON(t, sch, js)
			defer rec.Release()
			var out []arrow.RecordBatch
			for range copies {
				if slice {
					out = append(out, rec.NewSlice(1, rec.NumRows()))
				} else {
					rec.Retain()
					out = append(out, rec)
				}
			}
			return out
		}
	}
	inputs := []input{
		{"edge cases", edge, fromJSON(edge, edgeRows, 3, false)},
		{"sliced records", edge, fromJSON(edge, edgeRows, 3, true)},
		{"synthetic rollouts, several row groups", RolloutsSchema(), func(t *testing.T) []arrow.RecordBatch {
			rr := SyntheticRollouts(rowGroupRows+40_000, 3)
			defer rr.Release()
			var out []arrow.RecordBatch
			for rr.Next() {
				rec := rr.RecordBatch()
				rec.Retain()
				out = append(out, rec)
			}
			return out
		}},
	}
	for _, tc := range schemaRows {
		inputs = append(inputs, input{tc.name, tc.sch, fromJSON(tc.sch, tc.rows, 2, false)})
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			if testing.Short() && in.sch == RolloutsSchema() {
				t.Skip("-short: 170k synthetic rows")
			}
			recs := in.recs(t)
			defer func() {
				for _, r := range recs {
					r.Release()
				}
			}()
			plans, ok := planColumns(in.sch)
			if !ok {
				t.Fatalf("schema %s not supported by the parallel writer", in.sch)
			}
			var ref bytes.Buffer
			refRows, err := writePqarrow(&ref, in.sch, readerOf(t, recs...))
			if err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 4} {
				var got bytes.Buffer
				rows, err := writeParallel(&got, in.sch, plans, readerOf(t, recs...), workers)
				if err != nil {
					t.Fatalf("workers=%d: %v", workers, err)
				}
				if rows != refRows || !bytes.Equal(got.Bytes(), ref.Bytes()) {
					t.Fatalf("workers=%d: %d rows, %d bytes; pqarrow: %d rows, %d bytes", workers, rows, got.Len(), refRows, ref.Len())
				}
			}
		})
	}
}

func TestPlanColumnsFallback(t *testing.T) {
	nested := arrow.NewSchema([]arrow.Field{
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true},
	}, nil)
	if _, ok := planColumns(nested); ok {
		t.Fatal("struct column planned for the parallel writer")
	}
	// The fallback still writes it.
	rec := recordFromJSON(t, nested, `[{"st": {"a": 1}}, {"st": null}]`)
	defer rec.Release()
	var buf bytes.Buffer
	if n, err := WriteParquet(&buf, nil, readerOf(t, rec)); n != 2 || err != nil {
		t.Fatalf("WriteParquet = %d, %v", n, err)
	}
}
