// Package jobs runs rljob job files (DESIGN.md §2): DuckDB SQL scripts whose
// `CALL <stage>(name := value, ...)` statements run registered Go stages.
//
// # Job files
//
// A job is split into statements by jobs/script. A CALL of a registered
// stage runs in Go; every other statement runs in DuckDB on the engine's one
// connection, whose catalog holds a view per lake table and the macros of
// sql/lib. A CALL of a name that is not a stage must be a DuckDB table
// function, table macro or pragma (`CALL pragma_version()`), else the job is
// rejected as calling an unknown stage, with the closest stage name.
//
// Before anything runs (and with --dry-run, instead of running), Run checks:
// the run name (a partition value: no '/', '..', '=', ...), --shard and
// --set, every stage call's arguments against the stage's declared ones
// (unknown names with a did-you-mean hint, types, required, enums,
// cross-argument checks), CALL names, and the grammar of every SQL
// statement (DuckDB's parser). Errors carry file:line:col and the statement.
//
// # Stages
//
// A Stage declares a StageSpec (name, doc, typed arguments with defaults,
// whether it is sharded, which lake tables a call writes) and a Run method
// that receives a *StageCtx: the engine, the lake, run/step/call/shard,
// the seed, a logger, Commit (one commit unit per output table) and Expose
// (refresh the lake views). Register adds a stage to DefaultRegistry; the
// built-in stages are save, exec, reward and log_metrics; the model stages
// live in jobs/rl.
//
// # Steps, resume and skipping
//
// `--steps N` runs the whole script N times. Before each iteration the
// runner sets DuckDB variables step (BIGINT), run (VARCHAR), seed (BIGINT),
// shard and num_shards (BIGINT) and every --set key=value (typed as int,
// float, bool, else string); read them with getvariable('step').
//
// A step is complete when its marker unit steps/run=R/step=S/part-0-<shard>/
// is committed (table StepsTable, written after every other unit of the
// step; columns shard, num_shards, started_at, finished_at, job_file,
// job_sha256, rljob_version). A run resumes at one past its last complete
// step, the first step being 0. Within a step being redone after a crash, a
// stage call whose output units (table, run, step, call index, shard) are
// all committed is skipped; its outputs are already in the lake views.
// Plain SQL statements are re-executed, so they must be deterministic
// (ORDER BY, hash(..., getvariable('step')) rather than random()).
// --until-step S stops before step S, so `--steps 1000 --until-step 40`
// finishes a run however often it was interrupted.
//
// # Locks and shards
//
// One runner per (lake, run): an exclusive flock on
// <lake>/_locks/run=<R>.lock, holding "pid=... host=... started=...". A
// second runner fails at once with a *LockError naming the holder (exit 4)
// and changes nothing. The kernel drops the lock when its holder dies.
//
// `--shard i/n` (or SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) makes the
// sharded stages (reward, exec with an input) handle the rows with
// hash(prompt_id) % n = i and write their own part files; stages that are
// not sharded (save, log_metrics) run on shard 0 only. Each shard has its
// own lock (run=<R>.shard=<i>-of-<n>.lock) and its own step markers.
//
// # Errors
//
// UsageError (job or command line: exit 2), DataError (missing column,
// corrupt file: exit 3) and LockError (exit 4) are the typed errors; any
// other error is exit 1. ExitCode is the one mapping; ClassifySQL sorts
// DuckDB's errors into the first two.
package jobs
