package arrowio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Small literal rows for every lake schema (Arrow JSON, one object per row).
var schemaRows = []struct {
	name string
	sch  *arrow.Schema
	rows string
}{
	{"prompts", PromptsSchema(), `[
		{"prompt_id": "p1", "prompt": "1+1?", "answer": "2", "task": "gsm8k", "split": "test"},
		{"prompt_id": "p2", "prompt": "ünïcode ✓", "answer": null, "task": "math", "split": "train"}]`},
	{"rollouts", RolloutsSchema(), `[
		{"rollout_id": "r1", "prompt_id": "p1", "sample_idx": 0, "policy_step": 3, "prompt": "1+1?", "completion": "2",
		 "prompt_tokens": [1, 2, 3], "completion_tokens": [4], "logprobs": [-0.5], "finish_reason": "stop",
		 "temperature": 1.0, "seed": 42, "tag": "train", "created_at": "2026-01-02T03:04:05.123456Z"},
		{"rollout_id": "r2", "prompt_id": "p1", "sample_idx": 1, "policy_step": 3, "prompt": "1+1?", "completion": "",
		 "prompt_tokens": [1, 2, 3], "completion_tokens": [], "logprobs": [], "finish_reason": "length",
		 "temperature": 0.7, "seed": -1, "tag": "eval", "created_at": "2026-01-02T03:04:06Z"}]`},
	{"rewards", RewardsSchema(), `[
		{"rollout_id": "r1", "verifier": "gsm8k", "reward": 1.0, "correct": true, "extracted": "2"},
		{"rollout_id": "r2", "verifier": "gsm8k", "reward": 0.0, "correct": false, "extracted": null}]`},
	{"metrics", MetricsSchema(), `[
		{"name": "accuracy", "value": 0.5, "created_at": "2026-01-02T03:04:05Z"},
		{"name": "loss", "value": -1e-300, "created_at": null}]`},
}

func recordFromJSON(t testing.TB, sch *arrow.Schema, js string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sch, strings.NewReader(js))
	if err != nil {
		t.Fatalf("record from JSON: %v", err)
	}
	return rec
}

func readerOf(t testing.TB, recs ...arrow.RecordBatch) array.RecordReader {
	t.Helper()
	rr, err := array.NewRecordReader(recs[0].Schema(), recs)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestParquetRoundTrip(t *testing.T) {
	for _, tc := range schemaRows {
		t.Run(tc.name, func(t *testing.T) {
			rec := recordFromJSON(t, tc.sch, tc.rows)
			defer rec.Release()
			p := filepath.Join(t.TempDir(), "x.parquet")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			// Two records: the second one exercises the chunked row group.
			rows, err := WriteParquet(f, tc.sch, readerOf(t, rec, rec))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := 2 * rec.NumRows(); rows != want {
				t.Fatalf("rows = %d, want %d", rows, want)
			}
			tbl, err := ReadParquet(p)
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Release()
			if !sameFields(tbl.Schema(), tc.sch) {
				t.Fatalf("schema\n got %s\nwant %s", tbl.Schema(), tc.sch)
			}
			got := array.NewTableReader(tbl, 0)
			defer got.Release()
			var n int64
			for got.Next() {
				r := got.RecordBatch()
				for off := int64(0); off < r.NumRows(); off += rec.NumRows() {
					s := r.NewSlice(off, off+rec.NumRows())
					if !array.RecordEqual(s, rec) {
						t.Errorf("rows %d..: got\n%v\nwant\n%v", n+off, s, rec)
					}
					s.Release()
				}
				n += r.NumRows()
			}
			if n != 2*rec.NumRows() {
				t.Fatalf("read %d rows", n)
			}
			if r, err := ParquetRows(p); err != nil || r != n {
				t.Fatalf("ParquetRows = %d, %v", r, err)
			}
		})
	}
}

func TestOpenParquetStreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	rr := SyntheticRollouts(40_000, 7)
	if _, err := WriteParquet(f, nil, rr); err != nil {
		t.Fatal(err)
	}
	rr.Release()
	f.Close()
	rd, err := OpenParquet(p, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	want := SyntheticRollouts(40_000, 7)
	defer want.Release()
	got, err := collect(rd)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := collect(want)
	defer got.Release()
	defer exp.Release()
	if !sameFields(got.Schema(), exp.Schema()) || got.NumRows() != exp.NumRows() {
		t.Fatalf("streamed %s (%d rows), want %s (%d rows)", got.Schema(), got.NumRows(), exp.Schema(), exp.NumRows())
	}
	for i := range int(exp.NumCols()) {
		if !array.ChunkedEqual(got.Column(i).Data(), exp.Column(i).Data()) {
			t.Errorf("column %s differs", exp.Schema().Field(i).Name)
		}
	}
}

func collect(rr array.RecordReader) (arrow.Table, error) {
	var recs []arrow.RecordBatch
	for rr.Next() {
		r := rr.RecordBatch()
		r.Retain()
		recs = append(recs, r)
	}
	return array.NewTableFromRecords(rr.Schema(), recs), rr.Err()
}

func TestSyntheticRolloutsDeterministic(t *testing.T) {
	digest := func(n int, seed int64) string {
		t.Helper()
		var buf bytes.Buffer
		rr := SyntheticRollouts(n, seed)
		defer rr.Release()
		if _, err := WriteParquet(&buf, nil, rr); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", buf.Bytes())
	}
	a, b, c := digest(20_000, 1), digest(20_000, 1), digest(20_000, 2)
	if a != b {
		t.Fatal("same seed gave different files")
	}
	if a == c {
		t.Fatal("different seeds gave the same file")
	}
	rr := SyntheticRollouts(20_001, 1)
	defer rr.Release()
	var rows int64
	for rr.Next() {
		rec := rr.RecordBatch()
		rows += rec.NumRows()
		ct := rec.Column(7).(*array.List)
		lp := rec.Column(8).(*array.List)
		for i := range rec.NumRows() {
			s, e := ct.ValueOffsets(int(i))
			s2, e2 := lp.ValueOffsets(int(i))
			if n := e - s; n < 20 || n > 60 || e2-s2 != n {
				t.Fatalf("row %d: %d completion tokens, %d logprobs", i, n, e2-s2)
			}
		}
	}
	if rows != 20_001 {
		t.Fatalf("rows = %d", rows)
	}
}

// newLake opens a lake in a temporary folder.
func newLake(t testing.TB) *Lake {
	t.Helper()
	l, err := OpenLake(filepath.Join(t.TempDir(), "lake"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// commitRewards commits one rewards unit with rows rows and returns its manifest.
func commitRewards(t testing.TB, l *Lake, u Unit, rows int) *Manifest {
	t.Helper()
	s, err := l.Begin(u, map[string]any{"verifier": "gsm8k"})
	if err != nil {
		t.Fatal(err)
	}
	rec := rewardsRecord(t, rows, u.Step)
	defer rec.Release()
	n, err := s.WriteRecords("", nil, readerOf(t, rec))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(rows) {
		t.Fatalf("WriteRecords = %d rows, want %d", n, rows)
	}
	m, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rewardsRecord is rows rewards rows whose rollout ids carry tag.
func rewardsRecord(t testing.TB, rows int, tag int64) arrow.RecordBatch {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i := range rows {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"rollout_id": "r%d-%d", "verifier": "gsm8k", "reward": %d, "correct": %t, "extracted": "%d"}`, tag, i, i%2, i%2 == 1, i)
	}
	b.WriteString("]")
	return recordFromJSON(t, RewardsSchema(), b.String())
}

func TestCommit(t *testing.T) {
	l := newLake(t)
	u := Unit{Table: TableRewards, Run: "7", Step: 3, Call: 2, Shard: 1}
	if ok, err := l.IsCommitted(u); ok || err != nil {
		t.Fatalf("IsCommitted before commit = %v, %v", ok, err)
	}
	if _, err := l.ReadManifest(u); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadManifest before commit: %v, want ErrNotExist", err)
	}
	m := commitRewards(t, l, u, 5)

	if got, want := u.Dir(), "rewards/run=7/step=3/part-2-1"; got != want {
		t.Fatalf("Dir = %q, want %q", got, want)
	}
	if ok, err := l.IsCommitted(u); !ok || err != nil {
		t.Fatalf("IsCommitted = %v, %v", ok, err)
	}
	got, err := l.ReadManifest(u)
	if err != nil {
		t.Fatal(err)
	}
	if got.Unit != u || got.RljobVersion != Version || got.Args["verifier"] != "gsm8k" || got.CreatedAt.IsZero() {
		t.Fatalf("manifest = %+v", got)
	}
	if len(got.Files) != 1 || got.Files[0].Name != "part-2-1.parquet" || got.Files[0].Rows != 5 || got.Rows() != 5 {
		t.Fatalf("manifest files = %+v", got.Files)
	}
	if !slices.Equal(got.Files, m.Files) {
		t.Fatalf("read manifest %+v != returned %+v", got.Files, m.Files)
	}
	p := l.Path(u.Dir() + "/part-2-1.parquet")
	sum, _ := fileSHA256(p)
	st, _ := os.Stat(p)
	if sum != got.Files[0].SHA256 || st.Size() != got.Files[0].Bytes {
		t.Fatalf("file sha256/size %s/%d, manifest %s/%d", sum, st.Size(), got.Files[0].SHA256, got.Files[0].Bytes)
	}
	tbl, err := ReadParquet(p)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if !sameFields(tbl.Schema(), RewardsSchema()) || tbl.NumRows() != 5 {
		t.Fatalf("read back %s, %d rows", tbl.Schema(), tbl.NumRows())
	}
	if ents, _ := os.ReadDir(l.Path(StagingDir)); len(ents) != 0 {
		t.Fatalf("staging not empty after commit: %v", ents)
	}
	if _, err := os.Stat(l.Path(LocksDir)); err != nil {
		t.Fatalf("_locks: %v", err)
	}
	step, ok, err := l.LastStep(TableRewards, "7")
	if step != 3 || !ok || err != nil {
		t.Fatalf("LastStep = %d, %v, %v", step, ok, err)
	}
	if _, ok, err := l.LastStep(TableRewards, "8"); ok || err != nil {
		t.Fatalf("LastStep of an absent run = %v, %v", ok, err)
	}
}

func TestLastStep(t *testing.T) {
	l := newLake(t)
	for _, s := range []int64{0, 2, 10} {
		commitRewards(t, l, Unit{Table: TableRewards, Run: "a", Step: s}, 1)
	}
	// A staged but uncommitted step and an empty step folder do not count.
	s, err := l.Begin(Unit{Table: TableRewards, Run: "a", Step: 11}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort()
	if err := os.MkdirAll(l.Path("rewards/run=a/step=12/part-0-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	step, ok, err := l.LastStep(TableRewards, "a")
	if step != 10 || !ok || err != nil {
		t.Fatalf("LastStep = %d, %v, %v; want 10", step, ok, err)
	}
}

func TestSecondCommitLoses(t *testing.T) {
	l := newLake(t)
	u := Unit{Table: TableRewards, Run: "r", Step: 1}
	first := commitRewards(t, l, u, 3)
	p := l.Path(u.Dir() + "/" + u.FileName())
	before, _ := os.ReadFile(p)
	manBefore, _ := os.ReadFile(l.Path(u.Dir() + "/" + ManifestName))

	s, err := l.Begin(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := rewardsRecord(t, 9, 99)
	defer rec.Release()
	if _, err := s.WriteRecords("", nil, readerOf(t, rec)); err != nil {
		t.Fatal(err)
	}
	staged := s.Path()
	_, err = s.Commit()
	if !errors.Is(err, ErrAlreadyCommitted) {
		t.Fatalf("second commit: %v, want ErrAlreadyCommitted", err)
	}
	if !strings.Contains(err.Error(), u.Dir()) {
		t.Errorf("error %q does not name the unit", err)
	}
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staged copy not removed: %v", err)
	}
	after, _ := os.ReadFile(p)
	manAfter, _ := os.ReadFile(l.Path(u.Dir() + "/" + ManifestName))
	if !bytes.Equal(before, after) || !bytes.Equal(manBefore, manAfter) {
		t.Fatal("committed unit changed")
	}
	if m, _ := l.ReadManifest(u); m.Rows() != first.Rows() {
		t.Fatalf("rows %d, want %d", m.Rows(), first.Rows())
	}
}

func TestConcurrentCommitsOneWins(t *testing.T) {
	const writers = 8
	l := newLake(t)
	u := Unit{Table: TableRewards, Run: "race", Step: 5, Call: 1}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []int
		errs []error
	)
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			s, err := l.Begin(u, map[string]any{"writer": w})
			if err == nil {
				rec := rewardsRecord(t, 10+w, int64(w))
				_, err = s.WriteRecords("", nil, readerOf(t, rec))
				rec.Release()
			}
			<-start
			if err == nil {
				_, err = s.Commit()
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, w)
			} else if !errors.Is(err, ErrAlreadyCommitted) {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 || len(wins) != 1 {
		t.Fatalf("winners %v, unexpected errors %v", wins, errs)
	}
	m, err := l.ReadManifest(u)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows() != int64(10+wins[0]) {
		t.Fatalf("committed %d rows, winner %d wrote %d", m.Rows(), wins[0], 10+wins[0])
	}
	if ents, _ := os.ReadDir(l.Path(StagingDir)); len(ents) != 0 {
		t.Fatalf("staging not empty: %d entries", len(ents))
	}
	if n, ps, err := l.Verify(); n != 1 || len(ps) != 0 || err != nil {
		t.Fatalf("Verify = %d, %v, %v", n, ps, err)
	}
}

func TestCommitOverEmptyOrForeignFolder(t *testing.T) {
	l := newLake(t)
	u := Unit{Table: TableRewards, Run: "r", Step: 0}
	// An empty folder at the unit path holds no data: the commit replaces it.
	if err := os.MkdirAll(l.Path(u.Dir()), 0o755); err != nil {
		t.Fatal(err)
	}
	commitRewards(t, l, u, 2)
	// A non-empty folder without _commit.json is not ours: refuse, keep it.
	v := Unit{Table: TableRewards, Run: "r", Step: 1}
	if err := os.MkdirAll(l.Path(v.Dir()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Path(v.Dir()+"/notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := l.Begin(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit()
	if err == nil || errors.Is(err, ErrAlreadyCommitted) || !strings.Contains(err.Error(), "without _commit.json") {
		t.Fatalf("commit over a foreign folder: %v", err)
	}
	if b, _ := os.ReadFile(l.Path(v.Dir() + "/notes.txt")); string(b) != "mine" {
		t.Fatal("foreign folder changed")
	}
}

func TestCheckpointUnit(t *testing.T) {
	l := newLake(t)
	u := Unit{Table: TableCheckpoints, Run: "r", Step: 4, Call: 9, Shard: 9}
	if got := u.Dir(); got != "checkpoints/run=r/step=4/part-9-9" {
		t.Fatalf("Dir = %q", got)
	}
	s, err := l.Begin(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile("config.json", func(w io.Writer) error { _, err := io.WriteString(w, `{"a":1}`); return err }); err != nil {
		t.Fatal(err)
	}
	// A file written by an external command straight into the staging folder.
	if err := os.WriteFile(filepath.Join(s.Path(), "model.safetensors"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../x", "/abs", "_commit.json", ".hidden", "a//b", `a\b`} {
		if err := s.WriteFile(bad, func(io.Writer) error { return nil }); err == nil {
			t.Errorf("WriteFile(%q) accepted", bad)
		}
	}
	m, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"config.json", "model.safetensors"}) || m.Files[1].Bytes != 1000 {
		t.Fatalf("files %+v", m.Files)
	}
	if step, ok, _ := l.LastStep(TableCheckpoints, "r"); !ok || step != 4 {
		t.Fatalf("LastStep = %d, %v", step, ok)
	}
	if _, err := s.Commit(); err == nil {
		t.Fatal("second Commit of the same Staged accepted")
	}
}

func TestWriteRecordsProjection(t *testing.T) {
	l := newLake(t)
	// A query result with run/step, another column order and an extra column.
	in := arrow.NewSchema([]arrow.Field{
		{Name: "run", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "step", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "extra", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "created_at", Type: TimestampUTC, Nullable: true},
	}, nil)
	rec := recordFromJSON(t, in, `[{"run": "x", "step": 9, "value": 1.5, "extra": 1, "name": "loss", "created_at": null}]`)
	defer rec.Release()

	cases := []struct {
		name    string
		sch     *arrow.Schema
		want    *arrow.Schema
		wantErr string
	}{
		{"schema given", MetricsSchema(), MetricsSchema(), ""},
		{"schema from input minus keys", nil, arrow.NewSchema(in.Fields()[2:], nil), ""},
		{"missing column", RewardsSchema(), nil, `missing column "rollout_id"`},
		{"wrong type", arrow.NewSchema([]arrow.Field{{Name: "extra", Type: arrow.BinaryTypes.String, Nullable: true}}, nil), nil, `column "extra" has type int32, want utf8`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := Unit{Table: TableMetrics, Run: "x", Step: int64(i)}
			s, err := l.Begin(u, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Abort()
			_, err = s.WriteRecords("", tc.sch, readerOf(t, rec))
			if tc.wantErr != "" {
				var ce *ColumnError
				if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ColumnError %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			tbl, err := ReadParquet(l.Path(u.Dir() + "/" + u.FileName()))
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Release()
			if !sameFields(tbl.Schema(), tc.want) {
				t.Fatalf("file schema %s, want %s", tbl.Schema(), tc.want)
			}
		})
	}
}

func TestWriteRecordsEmpty(t *testing.T) {
	l := newLake(t)
	u := Unit{Table: TableRewards, Run: "r", Step: 0}
	s, err := l.Begin(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := array.NewRecordReader(RewardsSchema(), nil)
	if n, err := s.WriteRecords("", nil, rr); n != 0 || err != nil {
		t.Fatalf("WriteRecords = %d, %v", n, err)
	}
	m, err := s.Commit()
	if err != nil || m.Rows() != 0 {
		t.Fatalf("commit: %v, %v", m, err)
	}
	if _, ps, _ := l.Verify(); len(ps) != 0 {
		t.Fatalf("Verify: %v", ps)
	}
}

func TestValidatePartitionValue(t *testing.T) {
	cases := []struct {
		v      string
		reason string // "" = valid
	}{
		{"run1", ""}, {"7", ""}, {"grpo-qwen0.5b_lr1e-6", ""}, {"a.b", ""}, {"ünï", ""}, {"with space", ""},
		{"", "empty"}, {"a/b", `'/'`}, {`a\b`, `'\\'`}, {"..", `".."`}, {"a..b", `".."`}, {"k=v", `'='`},
		{".hidden", `starts with "."`}, {"nul\x00", "NUL"}, {"tab\tx", "control"}, {"nl\n", "control"},
		{"100%", `'%'`}, {"a*", `'*'`}, {"c:x", `':'`}, {" lead", "white space"}, {"bad\xff", "UTF-8"},
		{strings.Repeat("x", 201), "longer"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.v), func(t *testing.T) {
			err := ValidatePartitionValue(tc.v)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var pe *PartitionError
			if !errors.As(err, &pe) || pe.Value != tc.v {
				t.Fatalf("err = %v, want *PartitionError for %q", err, tc.v)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.reason) || !strings.Contains(msg, "use letters") {
				t.Fatalf("message %q lacks %q or the fix", msg, tc.reason)
			}
			if s := suggestName(tc.v); ValidatePartitionValue(s) != nil {
				t.Fatalf("suggestion %q is itself invalid", s)
			}
		})
	}
	l := newLake(t)
	for _, u := range []Unit{
		{Table: TableRewards, Run: "../../etc"}, {Table: "_staging", Run: "a"}, {Table: "a/b", Run: "a"},
		{Table: TableRewards, Run: "a", Step: -1}, {Table: TableRewards, Run: "a", Shard: -1},
	} {
		if _, err := l.Begin(u, nil); err == nil {
			t.Errorf("Begin(%+v) accepted", u)
		}
		if _, err := l.IsCommitted(u); err == nil {
			t.Errorf("IsCommitted(%+v) accepted", u)
		}
	}
}

// goodLake builds a lake with two runs of rewards and metrics, a checkpoint,
// user prompts and a staging leftover, and returns it with the path of one
// committed Parquet file.
func goodLake(t *testing.T) (*Lake, string) {
	t.Helper()
	l := newLake(t)
	for _, run := range []string{"a", "b"} {
		for step := int64(0); step < 3; step++ {
			commitRewards(t, l, Unit{Table: TableRewards, Run: run, Step: step}, 4)
			commitRewards(t, l, Unit{Table: TableRewards, Run: run, Step: step, Call: 1, Shard: 1}, 2)
		}
	}
	s, err := l.Begin(Unit{Table: TableCheckpoints, Run: "a", Step: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile("config.json", func(w io.Writer) error { _, err := w.Write([]byte("{}")); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	// User data: unmanaged prompts.
	rec := recordFromJSON(t, PromptsSchema(), schemaRows[0].rows)
	defer rec.Release()
	if err := os.MkdirAll(l.Path("prompts/gsm8k"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(l.Path("prompts/gsm8k/test.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteParquet(f, nil, readerOf(t, rec)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A crashed writer's leftover.
	left, err := l.Begin(Unit{Table: TableRewards, Run: "a", Step: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec2 := rewardsRecord(t, 1, 3)
	defer rec2.Release()
	if _, err := left.WriteRecords("", nil, readerOf(t, rec2)); err != nil {
		t.Fatal(err)
	}
	left.lock.Close() // the writer "dies": the kernel drops its flock
	return l, "rewards/run=a/step=1/part-0-0/part-0-0.parquet"
}

func TestVerify(t *testing.T) {
	const part = "rewards/run=a/step=1/part-0-0"
	cases := []struct {
		name     string
		corrupt  func(t *testing.T, l *Lake, file string)
		wantPath string // "" = no problem
		wantMsg  string
	}{
		{"good lake", func(*testing.T, *Lake, string) {}, "", ""},
		{"flipped byte", func(t *testing.T, l *Lake, file string) {
			b, _ := os.ReadFile(l.Path(file))
			b[len(b)/2] ^= 0x40
			writeOver(t, l.Path(file), b)
		}, part + "/part-0-0.parquet", "sha256"},
		{"truncated file", func(t *testing.T, l *Lake, file string) {
			if err := os.Truncate(l.Path(file), 10); err != nil {
				t.Fatal(err)
			}
		}, part + "/part-0-0.parquet", "size 10 bytes"},
		{"missing file", func(t *testing.T, l *Lake, file string) {
			if err := os.Remove(l.Path(file)); err != nil {
				t.Fatal(err)
			}
		}, part + "/part-0-0.parquet", "missing"},
		{"extra file", func(t *testing.T, l *Lake, file string) {
			writeOver(t, l.Path(part+"/part-9-9.parquet"), []byte("PAR1"))
		}, part + "/part-9-9.parquet", "not listed"},
		{"corrupt manifest", func(t *testing.T, l *Lake, file string) {
			writeOver(t, l.Path(part+"/_commit.json"), []byte(`{"table": "rewards", "files": [`))
		}, part + "/_commit.json", "corrupt manifest"},
		{"manifest of another unit", func(t *testing.T, l *Lake, file string) {
			b, _ := os.ReadFile(l.Path("rewards/run=b/step=1/part-0-0/_commit.json"))
			writeOver(t, l.Path(part+"/_commit.json"), b)
		}, part + "/_commit.json", "lies in"},
		{"manifest escaping its unit", func(t *testing.T, l *Lake, file string) {
			b, _ := os.ReadFile(l.Path(part + "/_commit.json"))
			writeOver(t, l.Path(part+"/_commit.json"), bytes.Replace(b, []byte(`"part-0-0.parquet"`), []byte(`"../../step=2/part-0-0/part-0-0.parquet"`), 1))
		}, part + "/_commit.json", "bad file name"},
		{"stray parquet in a managed table", func(t *testing.T, l *Lake, file string) {
			writeOver(t, l.Path("rewards/run=a/step=1/stray.parquet"), []byte("PAR1"))
		}, "rewards/run=a/step=1/stray.parquet", "outside a commit unit"},
		{"checkpoint file changed", func(t *testing.T, l *Lake, file string) {
			writeOver(t, l.Path("checkpoints/run=a/step=2/part-0-0/config.json"), []byte("[]"))
		}, "checkpoints/run=a/step=2/part-0-0/config.json", "sha256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, file := goodLake(t)
			tc.corrupt(t, l, file)
			r, err := l.VerifyReport()
			if err != nil {
				t.Fatal(err)
			}
			if r.Checked != 13 {
				t.Errorf("checked %d units, want 13", r.Checked)
			}
			if !slices.Equal(r.Unmanaged, []string{"prompts/gsm8k/test.parquet"}) {
				t.Errorf("unmanaged = %v", r.Unmanaged)
			}
			if tc.wantPath == "" {
				if len(r.Problems) != 0 {
					t.Fatalf("problems on a good lake: %v", r.Problems)
				}
				return
			}
			found := false
			for _, p := range r.Problems {
				if p.Path == tc.wantPath && strings.Contains(p.Msg, tc.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("problems %v lack %s: %q", r.Problems, tc.wantPath, tc.wantMsg)
			}
		})
	}
}

// sameFields compares names, types and nullability, ignoring metadata (the
// Parquet reader adds PARQUET:field_id).
func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i, f := range a.Fields() {
		g := b.Field(i)
		if f.Name != g.Name || f.Nullable != g.Nullable || !arrow.TypeEqual(f.Type, g.Type) {
			return false
		}
	}
	return true
}

func writeOver(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	l, _ := goodLake(t)
	got, err := l.List()
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(l.Path("prompts/gsm8k/test.parquet"))
	var bytesA int64
	for step := range 3 {
		for _, p := range []string{"part-0-0", "part-1-1"} {
			m, err := readManifest(l.Path(fmt.Sprintf("rewards/run=a/step=%d/%s/_commit.json", step, p)))
			if err != nil {
				t.Fatal(err)
			}
			bytesA += m.Bytes()
		}
	}
	want := []TableSummary{
		{Table: "checkpoints", Run: "a", Units: 1, Steps: 1, MinStep: 2, MaxStep: 2, Files: 1, Bytes: 2},
		{Table: "prompts", Run: "", Files: 1, Rows: 2, Bytes: fi.Size(), Unmanaged: true},
		{Table: "rewards", Run: "a", Units: 6, Steps: 3, MinStep: 0, MaxStep: 2, Files: 6, Rows: 18, Bytes: bytesA},
	}
	if len(got) != 4 || !slices.Equal(got[:3], want) || got[3].Run != "b" || got[3].Rows != 18 {
		t.Fatalf("List =\n%+v\nwant (first 3)\n%+v", got, want)
	}
}

func TestGCRemovesOnlyOldStaging(t *testing.T) {
	l, _ := goodLake(t)
	ents, _ := os.ReadDir(l.Path(StagingDir))
	ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), LockSuffix) })
	if len(ents) != 1 {
		t.Fatalf("staging entries: %d", len(ents))
	}
	leftover := l.Path(StagingDir + "/" + ents[0].Name())
	if n, ps, _ := l.Verify(); len(ps) != 0 || n != 13 {
		t.Fatalf("Verify sees staging: %d %v", n, ps)
	}
	removed, err := l.GC(time.Hour)
	if err != nil || len(removed) != 0 {
		t.Fatalf("GC of a fresh leftover removed %v, %v", removed, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	filepath.WalkDir(leftover, func(p string, _ os.DirEntry, _ error) error { return os.Chtimes(p, old, old) })
	if removed, err := l.GC(3 * time.Hour); err != nil || len(removed) != 0 {
		t.Fatalf("GC(3h) removed %v, %v", removed, err)
	}
	removed, err = l.GC(time.Hour)
	if err != nil || len(removed) != 1 || removed[0] != StagingDir+"/"+ents[0].Name() {
		t.Fatalf("GC(1h) removed %v, %v", removed, err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("leftover still there")
	}
	if n, ps, _ := l.Verify(); len(ps) != 0 || n != 13 {
		t.Fatalf("Verify after GC: %d %v", n, ps)
	}
}
