package script

import (
	"strings"
	"testing"
)

// TestErrorPosition feeds DuckDB's real error messages for statements of a
// job file back through ErrorPosition.
func TestErrorPosition(t *testing.T) {
	o := duckDB(t)
	long := "SELECT 1 AS aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, 2 AS bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb FROM FROM t WHERE cccccccccccccccccccccccccccccccccccccccccccccccccccc"
	tests := []struct {
		name      string
		src       string
		line, col int
	}{
		{"first line", "SELEC 1", 1, 1},
		{"second statement", "SELECT 1;\n  SELECT 1 FROM FROM t;", 2, 17},
		{"third line of statement", "SELECT 1;\nSELECT 1,\n  2,\n  3 FROM FROM t", 4, 10},
		{"multi-byte characters", "SELECT 'üüüü', 'ééé' FROM FROM t", 1, 27},
		{"long line window", "-- x\n" + long, 2, strings.Index(long, "FROM FROM") + 6},
		{"tabs", "\tSELECT\t1 FROM FROM", 1, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sts, err := Split(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			st := sts[len(sts)-1]
			_, ok, msg := o.count(st.Text)
			if ok {
				t.Fatalf("DuckDB parsed %q", st.Text)
			}
			line, col, ok := ErrorPosition(st, msg)
			if !ok || line != tc.line || col != tc.col {
				t.Fatalf("ErrorPosition(%q) = %d:%d %v, want %d:%d\nmessage: %s", st.Text, line, col, ok, tc.line, tc.col, msg)
			}
		})
	}
	if _, _, ok := ErrorPosition(Statement{Text: "SELECT 1"}, "Catalog Error: Table x does not exist"); ok {
		t.Error("message without LINE context gave a position")
	}
}
