package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/rs/zerolog"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// StageCtx is what a running stage sees: the engine (with the lake's views,
// the job's tables and the runner's variables), the lake, where in the run it
// is, a seed, a logger and a progress bar factory. Commit writes one output
// table's unit and re-exposes the lake views.
type StageCtx struct {
	Engine *rsql.Engine
	Lake   *arrowio.Lake
	Stage  string // stage name
	Run    string
	Step   int64
	Call   int // the call number: the CALL's statement index in a job without loops (see Stmt.Slot)
	Shard  int // this runner's shard, 0 <= Shard < NumShards
	// NumShards is the number of shards (1 when unsharded).
	NumShards int
	Seed      int64 // the run's --seed; derive per-use seeds with SeedFor
	Pos       Pos   // where the CALL is
	JobSHA256 string
	// JobDir is the job file's folder: relative paths written in the job
	// file resolve against it (Path).
	JobDir string
	Log    zerolog.Logger

	args     Args
	progress Progress
}

// SeedFor derives a seed for this call from the run seed, step, call index
// and any further parts (prompt, sample ...), via DeriveSeed. It does not
// depend on the shard: a sharded run draws what an unsharded one does.
func (sc *StageCtx) SeedFor(parts ...int64) int64 {
	all := append([]int64{sc.Step, int64(sc.Call)}, parts...)
	return DeriveSeed(sc.Seed, all...)
}

// Path resolves a path argument: a path written literally in the job file
// is relative to the job file's folder; an absolute path, and a value that
// came from an expression (a --set variable), are used as given.
func (sc *StageCtx) Path(arg, p string) string {
	if p == "" || filepath.IsAbs(p) || sc.JobDir == "" || sc.args.fromExpr[arg] {
		return p
	}
	return filepath.Join(sc.JobDir, p)
}

// jobDir is the folder of a job file.
func jobDir(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return filepath.Dir(file)
	}
	return filepath.Dir(abs)
}

// Unit is the commit unit of this call for table.
func (sc *StageCtx) Unit(table string) arrowio.Unit {
	return arrowio.Unit{Table: table, Run: sc.Run, Step: sc.Step, Call: sc.Call, Shard: sc.Shard}
}

// slowCommit is a test hook: RLJOB_TEST_SLOW_COMMIT=<ms> sleeps that long
// inside each commit (after the files are staged, before the rename) and
// again after it, so the crash test's SIGKILLs land inside and between
// commits. It has no other effect.
func slowCommit() {
	if v := os.Getenv("RLJOB_TEST_SLOW_COMMIT"); v != "" {
		if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	}
}

// Commit writes rr as this call's unit of table (part-<call>-<shard>.parquet
// under <table>/run=R/step=S/part-<call>-<shard>/) through the lake's commit
// protocol, then refreshes the engine's lake views so later statements see
// it. It consumes rr but does not release it. If the unit is already
// committed (a rerun racing or repeating a call) the staged copy is
// discarded and the committed row count is returned: commits are idempotent.
func (sc *StageCtx) Commit(ctx context.Context, table string, rr array.RecordReader) (rows int64, err error) {
	u := sc.Unit(table)
	meta := map[string]any{"stage": sc.Stage, "args": sc.args.Map(), "num_shards": sc.NumShards, "seed": sc.Seed, "job_sha256": sc.JobSHA256}
	st, err := sc.Lake.Begin(u, meta)
	if err != nil {
		return 0, fmt.Errorf("jobs: %s: begin %s: %w", sc.Stage, u.Dir(), err)
	}
	rows, err = st.WriteRecords(u.FileName(), nil, rr)
	if err != nil {
		_ = st.Abort()
		var ce *arrowio.ColumnError
		if errors.As(err, &ce) {
			return 0, &DataError{Pos: sc.Pos, Msg: fmt.Sprintf("%s: output for table %s", sc.Stage, table), Table: table, Column: ce.Column, Err: err}
		}
		return 0, fmt.Errorf("jobs: %s: write %s: %w", sc.Stage, u.Dir(), err)
	}
	slowCommit()
	if _, err := st.Commit(); err != nil {
		if !errors.Is(err, arrowio.ErrAlreadyCommitted) {
			return 0, fmt.Errorf("jobs: %s: commit %s: %w", sc.Stage, u.Dir(), err)
		}
		sc.Log.Warn().Str("unit", u.Dir()).Msg("unit already committed; kept the committed copy")
		if m, merr := sc.Lake.ReadManifest(u); merr == nil {
			rows = m.Rows()
		}
	}
	slowCommit()
	if err := sc.Expose(ctx); err != nil {
		return rows, err
	}
	return rows, nil
}

// Expose re-creates the engine's lake views so committed units (this call's
// or, on resume, earlier ones) are visible to the statements that follow.
// Under a snapshot (a job step) the lake views stay as the step began and
// the runner re-creates the this_step_ views after the call, so there is
// nothing to do.
func (sc *StageCtx) Expose(ctx context.Context) error {
	if sc.Engine.Snapshot() != nil {
		return nil
	}
	if err := sc.Engine.Refresh(ctx); err != nil {
		return fmt.Errorf("jobs: refresh lake views: %w", err)
	}
	return nil
}

// ShardPredicate is the SQL condition selecting this shard's rows by col
// (DuckDB's hash(), a UBIGINT): "hash(col) % n = i", or "TRUE" unsharded.
func (sc *StageCtx) ShardPredicate(col string) string {
	if sc.NumShards <= 1 {
		return "TRUE"
	}
	return fmt.Sprintf("hash(%s) %% %d = %d", QuoteIdent(col), sc.NumShards, sc.Shard)
}

// Columns returns the column names of a table or view (in order), or of a
// parenthesised query "(SELECT ...)". A table that does not exist is a
// UsageError at the argument's position.
func (sc *StageCtx) Columns(ctx context.Context, arg, table string) ([]string, error) {
	from := TableRef(table)
	if strings.HasPrefix(table, "(") {
		from = table + " AS q"
	}
	rr, err := sc.Engine.QueryArrow(ctx, "SELECT * FROM "+from+" LIMIT 0")
	if err != nil {
		return nil, &UsageError{
			Pos:  sc.args.Pos(arg),
			Msg:  fmt.Sprintf("%s: %s := '%s': cannot read it", sc.Stage, arg, strings.TrimSuffix(strings.TrimPrefix(table, "("), ")")),
			Hint: strings.TrimPrefix(firstLine(err.Error()), "sql: query: "),
		}
	}
	defer rr.Release()
	var cols []string
	for _, f := range rr.Schema().Fields() {
		cols = append(cols, f.Name)
	}
	for rr.Next() {
	}
	return cols, nil
}

// RequireColumns checks that table has every column in want; a missing one
// is a DataError naming the column and the table.
func (sc *StageCtx) RequireColumns(ctx context.Context, arg, table string, want ...string) error {
	cols, err := sc.Columns(ctx, arg, table)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[strings.ToLower(c)] = true
	}
	for _, w := range want {
		if !have[strings.ToLower(w)] {
			return &DataError{
				Pos:    sc.args.Pos(arg),
				Msg:    fmt.Sprintf("%s: table %s has no column %q", sc.Stage, table, w),
				Table:  table,
				Column: w,
				Hint:   fmt.Sprintf("%s needs columns %s; %s has %s", sc.Stage, strings.Join(want, ", "), table, strings.Join(cols, ", ")),
			}
		}
	}
	return nil
}

// Bar starts a progress bar for a long loop of total items; it is a no-op
// unless the runner was given a Progress (a terminal).
func (sc *StageCtx) Bar(name string, total int64) Bar {
	if sc.progress == nil {
		return nopBar{}
	}
	return sc.progress.Bar(name, total)
}

// Progress makes progress bars (cmd/rljob implements it with mpb on a
// terminal).
type Progress interface {
	Bar(name string, total int64) Bar
}

// Bar is one progress bar.
type Bar interface {
	Add(n int64)
	Done()
}

type nopBar struct{}

func (nopBar) Add(int64) {}
func (nopBar) Done()     {}

var simpleRef = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$`)

// TableSource renders a table-or-query argument for FROM (without an
// alias): a parenthesised subquery for a query, else TableRef. It is also
// the form StageCtx.Columns takes.
func TableSource(v string) string {
	if IsQuery(v) {
		return "(" + strings.TrimRight(strings.TrimSpace(v), "; \t\n") + ")"
	}
	return TableRef(v)
}

// TableRef renders a table argument for SQL: a query as a parenthesised
// subquery (see IsQuery), a plain (optionally schema-qualified) name as
// written, anything else double-quoted.
func TableRef(name string) string {
	if IsQuery(name) {
		return TableSource(name)
	}
	if simpleRef.MatchString(name) {
		return name
	}
	return QuoteIdent(name)
}

// QuoteIdent double-quotes an identifier for DuckDB.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteString single-quotes a string literal for DuckDB.
func QuoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
