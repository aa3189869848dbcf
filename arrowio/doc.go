// Package arrowio is rljob's lake: the Arrow schemas of its tables, Parquet
// reading and writing (arrow-go pqarrow, zstd), and the commit protocol that
// makes every write atomic and durable (DESIGN.md §4–5).
//
// # Layout
//
//	<root>/
//	  prompts/…/*.parquet                      user data, any layout (unmanaged)
//	  rollouts/run=R/step=S/part-C-H/          one commit unit (C = CALL index, H = shard)
//	      part-C-H.parquet
//	      _commit.json
//	  rewards/run=R/step=S/part-C-H/…          same shape
//	  metrics/run=R/step=S/part-C-H/…          same shape
//	  checkpoints/run=R/step=S/                one commit unit: the step folder itself
//	      config.json, model.safetensors, …, _commit.json
//	  _staging/<unique>/                       units being written, never read
//	  _staging/drop.<run>.<step>.<random>/     a drop-step in progress (dropstep.go)
//	  _locks/                                  flock files (owned by package jobs)
//	  _compacted/<table>/<run>/<first>-<last>/ a segment: a read-optimised copy of
//	      data.parquet, sources.json,          complete steps first..last (see
//	      _commit.json                         segments.go; rljob lake compact)
//
// A commit unit is a folder, so a single rename(2) publishes it whole even when
// several calls or shards write the same step. DuckDB, Polars, pyarrow and
// Spark ignore the extra part-C-H level when parsing Hive keys.
//
// # run and step live in the path only
//
// run and step are Hive partition keys. The Parquet files arrowio writes into
// the lake do NOT contain run or step columns: Staged.WriteRecords drops
// top-level columns of those names, and the schemas returned by
// RolloutsSchema, RewardsSchema and MetricsSchema are the file schemas,
// without them. Readers get the keys from the path
// (read_parquet(..., hive_partitioning = true, hive_types = {'run': VARCHAR,
// 'step': BIGINT})); ViewSchema gives the schema a reader sees. Keeping the
// keys out of the files means a file can never disagree with its folder.
//
// # Commit protocol
//
// Lake.Begin creates _staging/<unique>/; Staged.WriteRecords and
// Staged.WriteFile write and fsync files into it (an external command may also
// write there, see Staged.Path). Staged.Commit hashes every file (sha256),
// writes and fsyncs _commit.json (unit, files with rows/bytes/sha256, rljob
// version, stage arguments, created_at), fsyncs the staging folder, creates
// the partition parents (fsyncing each new entry), renames the staging folder
// onto the unit folder with RENAME_NOREPLACE, and fsyncs the parent. The
// rename is the commit: a reader never sees half a unit, a crash leaves only
// garbage in _staging/ (removed by Lake.GC), and a second writer of the same
// unit loses the rename: its Commit returns an error wrapping
// ErrAlreadyCommitted and its staged copy is deleted. A committed unit is never
// overwritten.
//
// Lake.Verify re-checks every _commit.json against the files beside it,
// every segment against its files and the units it copies, and every run's
// step markers as the runner reads them (ReadStepStatus).
package arrowio

// Version is the rljob version written into every _commit.json.
var Version = "0.1.0"
