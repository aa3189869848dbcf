// Package sql is rljob's DuckDB engine: an in-process, in-memory DuckDB
// (github.com/duckdb/duckdb-go/v2, Arrow API behind the duckdb_arrow build tag)
// whose catalog holds one view per lake table and the macro library embedded
// from sql/lib/*.sql (DESIGN.md §4, RL.md).
//
// The name shadows database/sql; this package imports that one as stdsql.
//
// # One connection
//
// An Engine pins exactly one DuckDB connection for its lifetime: DuckDB
// variables (SET VARIABLE step = 3), temporary tables and Arrow views live on
// a connection, so a job file's statements, the stages it calls and the UDFs
// they register must all see the same one. Conn returns it for callers that
// need database/sql directly. An Engine is not safe for concurrent use, and a
// RecordReader from QueryArrow should be released before the next statement.
// The connection's TimeZone is UTC, so TIMESTAMPTZ values print in UTC and
// reach Arrow as timestamp[us, tz=UTC], the type of the lake's created_at.
//
// # Lake views
//
// Open and Refresh create, for every folder T directly under the lake root
// (except _staging, _locks, checkpoints and names starting with "_" or "."):
//
//	CREATE OR REPLACE VIEW "T" AS
//	SELECT run, step, * EXCLUDE (run, step)
//	FROM read_parquet('<lake>/T/**/*.parquet', hive_partitioning = true,
//	    union_by_name = true, hive_types = {'run': VARCHAR, 'step': BIGINT})
//
// run and step are Hive keys taken from the path (arrowio writes files without
// them); hive_types keeps a run named '7' a string. A key that no file path of
// T holds is left out of hive_types and of the leading columns (DuckDB rejects
// a hive_types entry for a key that is not a partition), so a user folder of
// plain Parquet files (prompts) opens as it is.
//
// The known tables (prompts, rollouts, rewards, metrics) that have no Parquet
// file yet get an empty view typed from the arrowio schemas (run VARCHAR,
// step BIGINT, then the file columns), so the library's macros and views bind
// on an empty lake.
//
// Each view is created on its own. When DuckDB cannot open a table (a corrupt
// or truncated Parquet file, conflicting schemas), Open and Refresh do not
// fail: the table is recorded as a *TableError (see TableErrors) naming the
// file, and its view is replaced by one that raises that same message
// whenever a query reads it. Every other table stays queryable.
//
// Views are bound when created: after a stage commits new files (possibly
// with new columns), call Refresh.
//
// # Macro library
//
// After the lake views of the first Refresh (Open's), the files
// sql/lib/*.sql are executed in file-name order: scored, prompt_stats,
// pass_at_k, grpo_advantages, dr_grpo_advantages, rloo_advantages,
// reinforce_pp_baseline_advantages, overlong_penalty, verl_prompts and the
// recipes' macros. They are not executed again: DuckDB binds a view's query
// when it is read, so the library's views follow re-created lake views. Each
// file's header comment states its formula; the tests in
// testdata/<macro>.txt check them against values worked out by hand.
//
// # Snapshots, listing cache, prompt summaries
//
// Under a Snapshot (a job step) the views read explicit file lists (see
// snapshot.go); the engine's arrowio.ListCache keeps the listing of the
// snapshot run's complete steps between steps; prompt_stats reads the
// run's prompt summaries (summary.go) for the steps compaction covered.
package sql
