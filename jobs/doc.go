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
// rljob's own statements are read first (docs/job-language-loops.md):
// INCLUDE 'file.sql' splices a file in (include.go; the job's identity
// covers it), and WHILE ... [MAX n] DO ... END WHILE and FOR i IN a..b
// [MAX n] DO ... END FOR repeat statements, each iteration of a call with
// its own call number (Stmt.Slot, Loop.Stride; loop_run.go runs them).
//
// Before anything runs (and with --dry-run, instead of running), Run checks:
// the run name (a partition value: no '/', '..', '=', ...), --shard and
// --set, every stage call's arguments against the stage's declared ones
// (unknown names with a did-you-mean hint, types, required, enums,
// cross-argument checks), CALL names, the grammar of every SQL
// statement (DuckDB's parser) and that every --set variable is read by
// some statement. A dry run also checks table arguments and warns when the
// run lacks the prompts or checkpoint the job reads (drycheck.go). Errors
// carry file:line:col and the statement.
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
// # Steps, snapshot reads, resume and skipping
//
// `--steps N` runs the whole script N times. Before each iteration the
// runner sets DuckDB variables step (BIGINT), run (VARCHAR), seed (BIGINT),
// shard and num_shards (BIGINT) and every --set key=value (typed as int,
// float, bool, else string); read them with getvariable('step').
//
// What a statement of step S sees (sql.Snapshot): the lake views (rollouts,
// rewards, scored, prompt_stats, ...) show the run's history up to the end
// of step S−1, all shards, plus other runs' complete steps; the outputs of
// this step's earlier calls are seen only through the this_step_<table>
// views (this_step_rollouts, this_step_scored, ...). The view is the same
// on a first attempt, on every rerun of the step and on every shard, so
// deterministic SQL (ORDER BY, hash(..., getvariable('step'))) computes the
// same thing however often a step is interrupted.
//
// After each stage call the runner commits a call record (CallsTable:
// calls/run=R/step=S/part-<call>-<shard>/, <call> the call number: the
// statement's index in a job without loops) naming the stage, its evaluated
// arguments, 'done' or 'skipped' (when := false) and the job file's sha256.
// A step is complete when the markers (StepsTable) of all its shards are
// committed; a run resumes at its first incomplete step. Within a step
// being redone after a crash, a call with a record is skipped; plain SQL is
// re-executed. A step is never resumed with a different job file (a
// UsageError naming both hashes). --until-step S stops before step S.
//
// # Arguments
//
// A stage argument is a literal or a constant SQL expression that DuckDB
// evaluates just before the call (`lr := getvariable('lr')`,
// `n := (SELECT count(*) FROM hard)`); every stage takes
// `when := <boolean>` (EvalArgs). Relative paths written in the job file
// resolve against its folder (StageCtx.Path; DuckDB's file_search_path for
// SQL); values that come from an expression (--set) are used as given.
//
// # Locks and shards in lockstep
//
// One runner per (lake, run, shard): an exclusive flock on
// <lake>/_locks/run=<R>.lock (run=<R>.shard=<i>-of-<n>.lock for a shard),
// holding "pid=... host=... started=...". A second runner fails at once
// with a *LockError naming the holder (exit 4) and changes nothing.
//
// `--shard i/n` (or SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of
// SLURM_ARRAY_TASK_COUNT) makes the sharded stages (rollout, reward,
// logprobs, exec with an input) handle the rows with hash(prompt_id) % n = i
// and write their own part files; after a sharded call every shard waits
// for all shards' records of it. A stage that is not sharded (init_policy,
// sft, train, save, log_metrics) runs on shard 0; the others wait for its
// record. Step S+1 starts when every shard's marker of step S is committed.
// There is one step number per run. A wait gives up after --wait-timeout
// (DataError naming the missing shards).
//
// # Errors
//
// UsageError (job or command line: exit 2), DataError (missing column,
// corrupt file: exit 3) and LockError (exit 4) are the typed errors; any
// other error is exit 1. ExitCode is the one mapping; ClassifySQL sorts
// DuckDB's errors into the first two.
package jobs
