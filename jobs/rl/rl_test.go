package rl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/rs/zerolog"

	"github.com/rljob/rljob/jobs"
	rsql "github.com/rljob/rljob/sql"
	"github.com/rljob/rljob/trainer"
)

// tinyConfig is a 2-layer, hidden-32 llama; vocab_size comes from the
// tokenizer (init_policy fills it in when the config has none).
const tinyConfig = `{
  "model_type": "llama",
  "hidden_size": 32,
  "intermediate_size": 64,
  "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "num_key_value_heads": 2,
  "max_position_embeddings": 64,
  "rms_norm_eps": 1e-5,
  "rope_theta": 10000,
  "tie_word_embeddings": true
}
`

const symbols = "0123456789+="

// initJob starts a run at step 0.
const initJob = `CALL init_policy(config := '{{config}}', tokenizer := 'chars:` + symbols + `', seed := 7);`

// grpoJob is one GRPO step over 6 addition prompts. The reward is 1 when
// the first character of the completion is the answer's (regex verifier),
// so a random policy scores about 1 in 13 and some groups vary.
const grpoJob = `
CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, CAST(i % 5 AS VARCHAR) || '+' || CAST(i % 4 AS VARCHAR) || '=' AS prompt,
       CAST(i % 5 + i % 4 AS VARCHAR) AS answer, 'add' AS task
FROM range(6) t(i);

CALL rollout(prompts := 'batch', n := 4, max_new_tokens := 6, temperature := 1.0);
CALL reward(verifier := 'regex', pattern := '^(.)');

CREATE OR REPLACE TABLE this_step AS
SELECT * FROM this_step_scored;

CREATE OR REPLACE TABLE train_batch AS SELECT * FROM grpo_advantages('this_step');

CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28);
`

// testLake makes a lake folder and the tiny config file.
func testLake(t *testing.T) (lake, config string) {
	t.Helper()
	dir := t.TempDir()
	config = filepath.Join(dir, "config.json")
	if err := os.WriteFile(config, []byte(tinyConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "lake"), config
}

type runOpt struct {
	run           string // default "r"
	steps         int
	seed          int64
	shard, shards int
	log           io.Writer // the run's log (JSON lines); nil: none
}

// runJob runs src (with {{config}} substituted) against lake as run "r".
func runJob(t *testing.T, lake, config, src string, o runOpt) (*jobs.Result, error) {
	t.Helper()
	job := filepath.Join(t.TempDir(), "job.sql")
	src = strings.ReplaceAll(src, "{{config}}", config)
	if err := os.WriteFile(job, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.steps == 0 {
		o.steps = 1
	}
	if o.run == "" {
		o.run = "r"
	}
	log := zerolog.Nop()
	if o.log != nil {
		log = zerolog.New(o.log)
	}
	return jobs.Run(context.Background(), jobs.Options{
		JobFile: job, Lake: lake, Run: o.run, Steps: o.steps, Seed: o.seed,
		Shard: o.shard, NumShards: o.shards, Log: log,
	})
}

// mustRunShards runs n shards of the job concurrently, as a Slurm array
// does (shards run in lockstep and wait for each other).
func mustRunShards(t *testing.T, lake, config, src string, o runOpt, n int) {
	t.Helper()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		oi := o
		oi.shard, oi.shards = i, n
		go func() {
			_, err := runJob(t, lake, config, src, oi)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("shard run: %v", err)
		}
	}
}

func mustRun(t *testing.T, lake, config, src string, o runOpt) *jobs.Result {
	t.Helper()
	res, err := runJob(t, lake, config, src, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// query runs q on an engine over lake and renders every row as text.
func query(t *testing.T, lake, q string) []string {
	t.Helper()
	ctx := context.Background()
	e, err := rsql.Open(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rr, err := e.QueryArrow(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rr.Release()
	var out []string
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			var cells []string
			for c := 0; c < int(rec.NumCols()); c++ {
				// Clone: arrow-go's strings alias the record's (C) memory.
				cells = append(cells, strings.Clone(rec.Column(c).ValueStr(i)))
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// metricsOf returns run r's metrics of step as name → value.
func metricsOf(t *testing.T, lake string, step int) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, row := range query(t, lake, fmt.Sprintf("SELECT name, value FROM metrics WHERE run = 'r' AND step = %d ORDER BY name", step)) {
		name, v, _ := strings.Cut(row, "|")
		var f float64
		fmt.Sscan(v, &f)
		m[name] = f
	}
	return m
}

// checkpointFiles reads every file of checkpoint step but the manifest.
// ckDir is the newest checkpoint of run at step (a step may hold one per
// checkpoint-writing call: checkpoints/run=R/step=S/part-<call>-0).
func ckDir(t *testing.T, lake, run string, step int) string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(lake, "checkpoints", "run="+run, fmt.Sprintf("step=%d", step), "part-*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no checkpoint of run %s at step %d: %v", run, step, err)
	}
	sort.Slice(dirs, func(i, j int) bool {
		return len(dirs[i]) < len(dirs[j]) || len(dirs[i]) == len(dirs[j]) && dirs[i] < dirs[j]
	})
	return dirs[len(dirs)-1]
}

func checkpointFiles(t *testing.T, lake string, step int) map[string][]byte {
	t.Helper()
	dir := ckDir(t, lake, "r", step)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.Name() == "_commit.json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, what string, a, b map[string][]byte) {
	t.Helper()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%s: %d files vs %d", what, len(a), len(b))
	}
	for n, x := range a {
		if !bytes.Equal(x, b[n]) {
			t.Errorf("%s: %s differs", what, n)
		}
	}
}

// filesUnder maps the relative path of every file below lake/table to its
// bytes.
func filesUnder(t *testing.T, lake, table string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	root := filepath.Join(lake, table)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_commit.json") {
			return nil
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[rel] = b
		return nil
	})
	return out
}

// rolloutContent is the rollouts of run r without created_at, in a fixed order.
func rolloutContent(t *testing.T, lake string) []string {
	t.Helper()
	return query(t, lake, "SELECT * EXCLUDE (created_at) FROM rollouts WHERE run = 'r' ORDER BY step, rollout_id")
}

// grpoRun is init (step 0) + steps GRPO steps in a fresh lake.
func grpoRun(t *testing.T, steps int, seed int64) (lake, config string) {
	t.Helper()
	lake, config = testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: seed})
	mustRun(t, lake, config, grpoJob, runOpt{steps: steps, seed: seed})
	return lake, config
}

func TestGRPOEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs init + 2 GRPO steps of a tiny model (a few seconds)")
	}
	lake, _ := grpoRun(t, 2, 1)

	// Tables and columns.
	cols := query(t, lake, "SELECT column_name FROM (DESCRIBE rollouts) ORDER BY column_name")
	for _, want := range []string{"rollout_id", "prompt_id", "sample_idx", "policy_step", "prompt", "completion", "prompt_tokens",
		"completion_tokens", "logprobs", "finish_reason", "temperature", "seed", "tag", "created_at", "answer", "task", "run", "step"} {
		if !contains(cols, want) {
			t.Errorf("rollouts lacks column %s (has %v)", want, cols)
		}
	}
	if got := query(t, lake, "SELECT step, count(*), count(DISTINCT rollout_id), min(policy_step), max(policy_step) FROM rollouts GROUP BY step ORDER BY step"); !equal(got, []string{"1|24|24|0|0", "2|24|24|1|1"}) {
		t.Errorf("rollouts per step (step, rows, ids, policy_step) = %v", got)
	}
	if got := query(t, lake, "SELECT count(*) FROM rollouts WHERE len(logprobs) <> len(completion_tokens) OR len(completion_tokens) = 0 OR len(completion_tokens) > 6 OR prompt_tokens[1] <> 1"); !equal(got, []string{"0"}) {
		t.Errorf("rollouts with bad token lists: %v", got)
	}
	if got := query(t, lake, "SELECT count(*) FROM rollouts WHERE (finish_reason = 'stop') <> (completion_tokens[-1] = 2) OR finish_reason NOT IN ('stop', 'length')"); !equal(got, []string{"0"}) {
		t.Errorf("rollouts whose finish_reason disagrees with a final EOS: %v", got)
	}
	if got := query(t, lake, "SELECT count(*) FROM rewards"); !equal(got, []string{"48"}) {
		t.Errorf("rewards rows = %v, want 48", got)
	}
	if fs := checkpointFiles(t, lake, 0); fs["model.safetensors"] == nil || fs["tokenizer.json"] == nil || fs["config.json"] == nil {
		t.Errorf("checkpoint 0 lacks files: %v", keys(fs))
	}
	for step := 1; step <= 2; step++ { // light by default (full_state_every 4): the update's record and rows
		if fs := checkpointFiles(t, lake, step); len(fs) != 2 || fs[trainer.TrainInputsFile] == nil || fs[trainer.TrainerStateFile] == nil {
			t.Errorf("checkpoint %d: files %v, want a light checkpoint", step, keys(fs))
		}
	}
	if ck, err := trainer.LoadCheckpoint(ckDir(t, lake, "r", 2)); err != nil || ck.Opt == nil || ck.Opt.Step != 2 || ck.Tokenizer == nil {
		t.Errorf("train checkpoint 2 does not load with its optimizer state and tokenizer: %v", err)
	}

	// Metrics of docs/RL.md.
	m := metricsOf(t, lake, 2)
	for _, n := range []string{"actor/pg_loss", "actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl", "actor/entropy",
		"actor/grad_norm", "actor/lr", "critic/score/mean", "critic/score/max", "critic/score/min", "critic/advantages/mean",
		"critic/advantages/max", "critic/advantages/min", "response_length/mean", "response_length/max", "response_length/min",
		"response_length/clip_ratio", "timing_s/train", "perf/throughput", "actor/first_max_abs_log_ratio"} {
		if _, ok := m[n]; !ok {
			t.Errorf("metrics of step 2 lack %s (have %v)", n, keys2(m))
		}
	}
	if m["actor/lr"] != 1e-2 || m["response_length/max"] > 6 || !(m["actor/entropy"] > 0) {
		t.Errorf("metrics: %v", m)
	}
	// On-policy: one update per step, so ρ = 1 on the first minibatch.
	for step := 1; step <= 2; step++ {
		if r := metricsOf(t, lake, step)["actor/first_max_abs_log_ratio"]; !(r <= 1e-5) {
			t.Errorf("step %d: max |log π_θ − log π_old| at the start of train = %g, want <= 1e-5", step, r)
		}
	}
}

// TestOnPolicyRatio recomputes, with the training forward pass, the
// log-probabilities of step 1's rollouts under the checkpoint that sampled
// them and compares them with the stored behaviour logprobs.
func TestOnPolicyRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a GRPO step of a tiny model")
	}
	lake, _ := grpoRun(t, 1, 3)
	ck, err := trainer.LoadCheckpoint(ckDir(t, lake, "r", 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := rsql.Open(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rr, err := e.QueryArrow(ctx, "SELECT prompt_tokens, completion_tokens, logprobs, temperature FROM rollouts WHERE step = 1 ORDER BY rollout_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var worst float64
	n := 0
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		p, _ := i32s(rec.Column(0), i)
		c, _ := i32s(rec.Column(1), i)
		old, _ := f32s(rec.Column(2), i)
		temp, _ := f64At(rec.Column(3), i)
		toks := append(append([]int32{}, p...), c...)
		b := trainer.Batch{Tokens: toks, Lens: []int{len(toks)}, B: 1, T: len(toks)}
		logp, _, err := ck.Model.ForwardLogp(b, trainer.NextTokenTargets(b, []int{len(p)}), float32(temp), false)
		if err != nil {
			return err
		}
		for j := range c {
			worst = math.Max(worst, math.Abs(float64(logp[len(p)+j-1]-old[j])))
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || worst > 1e-5 {
		t.Errorf("recomputed vs behaviour logprobs over %d tokens: max |diff| = %g, want <= 1e-5", n, worst)
	}
	t.Logf("max |log π_train − log π_sampler| over %d tokens = %g", n, worst)
}

// TestDeterminismAndResume: two runs with one seed write the same rollouts
// (created_at aside), byte-identical rewards and checkpoints; a run made
// one step per invocation, and one whose last train call is redone after a
// simulated crash, end with the same checkpoint bytes.
func TestDeterminismAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs three 2-step GRPO runs of a tiny model")
	}
	a, _ := grpoRun(t, 2, 5)
	b, _ := grpoRun(t, 2, 5)
	if ra, rb := rolloutContent(t, a), rolloutContent(t, b); len(ra) != 48 || !equal(ra, rb) {
		t.Errorf("rollouts differ between two runs with the same seed (%d vs %d rows)", len(ra), len(rb))
	}
	sameFiles(t, "rewards parquet", filesUnder(t, a, "rewards"), filesUnder(t, b, "rewards"))
	for step := 0; step <= 2; step++ {
		sameFiles(t, fmt.Sprintf("checkpoint %d", step), checkpointFiles(t, a, step), checkpointFiles(t, b, step))
	}

	// Another seed samples something else.
	c, _ := grpoRun(t, 1, 6)
	if equal(rolloutContent(t, c), rolloutContent(t, a)[:24]) {
		t.Error("seeds 5 and 6 gave the same rollouts")
	}

	// Resume: --steps 1 twice.
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 5})
	mustRun(t, lake, config, grpoJob, runOpt{seed: 5})
	res := mustRun(t, lake, config, grpoJob, runOpt{seed: 5})
	if res.FirstStep != 2 {
		t.Fatalf("second invocation started at step %d, want 2", res.FirstStep)
	}
	sameFiles(t, "resumed checkpoint 2", checkpointFiles(t, a, 2), checkpointFiles(t, lake, 2))

	// Crash after train committed its checkpoint but before its metrics
	// and the step marker: the rerun must load step 1 (not its own step-2
	// checkpoint) and reproduce the same update.
	want := metricsOf(t, lake, 2)
	records, _ := filepath.Glob(filepath.Join(lake, "calls/run=r/step=2/part-*"))
	sort.Slice(records, func(i, j int) bool {
		return len(records[i]) < len(records[j]) || len(records[i]) == len(records[j]) && records[i] < records[j]
	})
	if len(records) != 3 {
		t.Fatalf("call records of step 2: %v, want 3 (rollout, reward, train)", records)
	}
	trainRecord, _ := filepath.Rel(lake, records[2])
	for _, d := range []string{"metrics/run=r/step=2", "steps/run=r/step=2", trainRecord} {
		if err := os.RemoveAll(filepath.Join(lake, d)); err != nil {
			t.Fatal(err)
		}
	}
	res = mustRun(t, lake, config, grpoJob, runOpt{seed: 5})
	if res.FirstStep != 2 || res.Skipped != 2 {
		t.Errorf("rerun: first step %d, skipped %d calls; want 2 and 2 (rollout, reward)", res.FirstStep, res.Skipped)
	}
	got := metricsOf(t, lake, 2)
	for n, v := range want {
		if strings.HasPrefix(n, "timing_s/") || strings.HasPrefix(n, "perf/") {
			continue
		}
		if got[n] != v {
			t.Errorf("rerun metric %s = %v, first attempt %v", n, got[n], v)
		}
	}
	sameFiles(t, "checkpoint 2 after rerun", checkpointFiles(t, a, 2), checkpointFiles(t, lake, 2))
}

// shardJob initialises and samples in one step, so that shard 1 (which
// skips the unsharded init_policy) finds shard 0's checkpoint.
const shardJob = initJob + `
CREATE OR REPLACE TABLE batch AS
SELECT 'p' || i AS prompt_id, CAST(i % 10 AS VARCHAR) || '+1=' AS prompt, CAST(i % 10 + 1 AS VARCHAR) AS answer
FROM range(10) t(i);
CALL rollout(prompts := 'batch', n := 3, max_new_tokens := 5, temperature := 0.9, top_k := 8);
`

// TestShardedRolloutsEqualUnsharded: --shard 0/2 + 1/2 write the rows of an
// unsharded run, and so does a run on one thread.
func TestShardedRolloutsEqualUnsharded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: samples 30 rollouts three times")
	}
	whole, config := testLake(t)
	mustRun(t, whole, config, shardJob, runOpt{seed: 11})
	parts, _ := testLake(t)
	mustRunShards(t, parts, config, shardJob, runOpt{seed: 11}, 2)
	w, p := rolloutContent(t, whole), rolloutContent(t, parts)
	if len(w) != 30 || !equal(w, p) {
		t.Errorf("sharded rollouts (%d rows) differ from unsharded (%d rows)", len(p), len(w))
	}
	// One thread samples the same bytes as several.
	single, _ := testLake(t)
	procs := runtime.GOMAXPROCS(1)
	_, err := runJob(t, single, config, shardJob, runOpt{seed: 11})
	runtime.GOMAXPROCS(procs)
	if err != nil {
		t.Fatal(err)
	}
	if s := rolloutContent(t, single); !equal(w, s) {
		t.Errorf("rollouts with GOMAXPROCS=1 differ from GOMAXPROCS=%d", procs)
	}
	if got := query(t, parts, "SELECT count(DISTINCT filename) FROM read_parquet('"+parts+"/rollouts/**/*.parquet', filename = true)"); !equal(got, []string{"2"}) {
		t.Errorf("sharded run wrote %v rollouts files, want 2", got)
	}
}

// TestSFTThenGreedyRollout fine-tunes on four examples until greedy
// decoding reproduces them: checks prompt masking, the EOS the stage
// appends, and that rollout decodes without it.
func TestSFTThenGreedyRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: trains a tiny model for 60 epochs")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 2})
	const job = `
CREATE OR REPLACE TABLE ex AS
SELECT * FROM (VALUES ('p1', '1+1=', '2'), ('p2', '2+3=', '5'), ('p3', '4+4=', '8'), ('p4', '9+9=', '18')) t(prompt_id, prompt, completion);
CALL sft(data := 'SELECT prompt, completion FROM ex', lr := 1e-2, epochs := 60, batch_size := 4, warmup := 5, full_state_every := 1); -- a full state: its weights file is compared below
CALL rollout(prompts := 'SELECT prompt_id, prompt, completion AS answer FROM ex', temperature := 0, max_new_tokens := 4, tag := 'eval');
`
	mustRun(t, lake, config, job, runOpt{seed: 2})
	m := metricsOf(t, lake, 1)
	if m["sft/tokens"] != 60*(2+2+2+3) || m["sft/sequences"] != 4 || !(m["sft/loss"] < 0.5) {
		t.Errorf("sft metrics = %v", m)
	}
	got := query(t, lake, "SELECT prompt_id, completion, finish_reason, policy_step, tag FROM rollouts WHERE step = 1 ORDER BY prompt_id")
	want := []string{"p1|2|stop|1|eval", "p2|5|stop|1|eval", "p3|8|stop|1|eval", "p4|18|stop|1|eval"}
	if !equal(got, want) {
		t.Errorf("greedy rollouts after sft = %v, want %v", got, want)
	}

	// Another run starts from the SFT checkpoint and samples the same.
	const fork = `CALL init_policy(policy := 'run=r');
CREATE OR REPLACE TABLE ex AS
SELECT * FROM (VALUES ('p1', '1+1=', '2'), ('p2', '2+3=', '5'), ('p3', '4+4=', '8'), ('p4', '9+9=', '18')) t(prompt_id, prompt, completion);
CALL rollout(prompts := 'SELECT prompt_id, prompt FROM ex', temperature := 0, max_new_tokens := 4, tag := 'eval');`
	mustRun(t, lake, config, fork, runOpt{run: "rl"})
	got = query(t, lake, "SELECT prompt_id, completion, finish_reason, policy_step, tag FROM rollouts WHERE run = 'rl' ORDER BY prompt_id")
	want = []string{"p1|2|stop|0|eval", "p2|5|stop|0|eval", "p3|8|stop|0|eval", "p4|18|stop|0|eval"}
	if !equal(got, want) {
		t.Errorf("greedy rollouts of a run started from the sft checkpoint = %v, want %v", got, want)
	}
	a := checkpointFiles(t, lake, 1)
	rl := filepath.Join(ckDir(t, lake, "rl", 0), "model.safetensors")
	if m, err := os.ReadFile(rl); err != nil || !bytes.Equal(m, a["model.safetensors"]) {
		t.Errorf("run rl's step-0 weights differ from run r's step-1 weights (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(ckDir(t, lake, "rl", 0), "optimizer.safetensors")); err == nil {
		t.Error("init_policy(from) copied optimizer state")
	}
}

// TestMicroBatchInvariance: the micro-batch size changes only float32
// summation order (micro-batches share the minibatch's denominators).
func TestMicroBatchInvariance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs two GRPO steps")
	}
	var ms []map[string]float64
	for _, mbs := range []string{"1", "24"} {
		lake, config := testLake(t)
		mustRun(t, lake, config, initJob, runOpt{seed: 12})
		job := strings.Replace(grpoJob, "clip_high := 0.28);", "clip_high := 0.28, entropy_coef := 0.01, loss_agg := 'seq-mean-token-mean', micro_batch_size := "+mbs+");", 1)
		mustRun(t, lake, config, job, runOpt{seed: 12})
		ms = append(ms, metricsOf(t, lake, 1))
	}
	for _, n := range []string{"actor/pg_loss", "actor/grad_norm", "actor/entropy", "actor/ppo_kl", "critic/advantages/max"} {
		a, b := ms[0][n], ms[1][n]
		if math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(b)) {
			t.Errorf("%s: micro_batch_size 1 gives %v, 24 gives %v", n, a, b)
		}
	}
	if ms[0]["actor/grad_norm"] == 0 {
		t.Error("zero gradient: the test data has no signal")
	}
}

// TestEmptyTrainCarriesPolicy: train on no rows commits the policy
// unchanged for the step.
func TestEmptyTrainCarriesPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a GRPO step")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 4})
	job := strings.Replace(grpoJob, "FROM grpo_advantages('this_step');", "FROM grpo_advantages('this_step') WHERE false;", 1)
	mustRun(t, lake, config, job, runOpt{seed: 4})
	sameFiles(t, "carried checkpoint", checkpointFiles(t, lake, 0), checkpointFiles(t, lake, 1))
	if m := metricsOf(t, lake, 1); m["train/sequences"] != 0 {
		t.Errorf("metrics = %v", m)
	}
}

func TestBadArguments(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	cases := []struct {
		name, job string
		class     string // "usage" | "data"
		want      []string
		column    string
	}{
		{"unknown policy path", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b', policy := '/no/such/checkpoint');`, "usage", []string{"/no/such/checkpoint", "no checkpoint"}, ""},
		{"unknown step", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b', policy := 'step=7');`, "usage", []string{"step=7", "not written before step"}, ""},
		{"missing advantage column", `CREATE TABLE d AS SELECT [1, 5]::INTEGER[] AS prompt_tokens, [6]::INTEGER[] AS completion_tokens, [-1.0]::FLOAT[] AS logprobs;
CALL train(data := 'd');`, "data", []string{`"advantage"`}, "advantage"},
		{"logprobs length", `CREATE TABLE d AS SELECT [1, 5]::INTEGER[] AS prompt_tokens, [6, 7]::INTEGER[] AS completion_tokens, [-1.0]::FLOAT[] AS logprobs, 1.0 AS advantage;
CALL train(data := 'd');`, "data", []string{"1 logprobs for 2 completion tokens"}, "logprobs"},
		{"missing prompt column", `CREATE TABLE b AS SELECT 'a' AS prompt_id;
CALL rollout(prompts := 'b');`, "data", []string{`"prompt"`}, "prompt"},
		{"duplicate prompt ids", `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt FROM range(2);
CALL rollout(prompts := 'b');`, "data", []string{`prompt_id "a"`}, "prompt_id"},
		{"init from unknown run", `CALL init_policy(policy := 'run=nosuch');`, "usage", []string{"run=nosuch", "no such checkpoint"}, ""},
		{"init from and tokenizer", `CALL init_policy(policy := 'run=x', tokenizer := 'chars:ab');`, "usage", []string{"drop config, tokenizer and seed"}, ""},
		{"init twice", `CALL init_policy(tokenizer := 'chars:ab');`, "usage", []string{"already has checkpoints"}, ""},
		{"kl without ref", `CALL train(data := 'x', kl_coef := 0.1);`, "usage", []string{"kl_coef needs a reference"}, ""},
		{"sum-norm without L", `CALL train(data := 'x', loss_agg := 'seq-mean-token-sum-norm');`, "usage", []string{"max_new_tokens"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runJob(t, lake, config, tc.job, runOpt{})
			if err == nil {
				t.Fatal("no error")
			}
			var ue *jobs.UsageError
			var de *jobs.DataError
			switch tc.class {
			case "usage":
				if !errors.As(err, &ue) {
					t.Errorf("error %T is not a UsageError: %v", err, err)
				}
			case "data":
				if !errors.As(err, &de) {
					t.Fatalf("error %T is not a DataError: %v", err, err)
				}
				if de.Column != tc.column {
					t.Errorf("DataError.Column = %q, want %q", de.Column, tc.column)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLatestWithoutCheckpoint(t *testing.T) {
	lake, config := testLake(t)
	_, err := runJob(t, lake, config, `CREATE TABLE b AS SELECT 'a' AS prompt_id, '1+1=' AS prompt;
CALL rollout(prompts := 'b');`, runOpt{})
	var ue *jobs.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no checkpoint before step 0") || !strings.Contains(err.Error(), "init_policy") {
		t.Errorf("err = %v", err)
	}
}

func TestRolloutIDAndSource(t *testing.T) {
	id := rolloutID("r", 3, 1, "p7", 2)
	if len(id) != 32 || id != rolloutID("r", 3, 1, "p7", 2) || id == rolloutID("r", 3, 1, "p7", 3) || id == rolloutID("r", 3, 2, "p7", 2) {
		t.Errorf("rolloutID not a stable function of (run, step, call, prompt, sample): %s", id)
	}
	for _, tc := range []struct{ in, from string }{
		{"batch", "batch AS src"},
		{"main.batch", "main.batch AS src"},
		{"SELECT * FROM t", "(SELECT * FROM t) AS src"},
		{"  with x AS (SELECT 1) SELECT * FROM x;", "(with x AS (SELECT 1) SELECT * FROM x) AS src"},
		{"my table", `"my table" AS src`},
	} {
		if got, _ := source(tc.in); got != tc.from {
			t.Errorf("source(%q) = %q, want %q", tc.in, got, tc.from)
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keys2(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestEvalComposes: evaluation is rollout(tag := 'eval') + reward + SQL
// (pass_at_k) + log_metrics; no eval stage is needed.
func TestEvalComposes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: samples 40 rollouts")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 8})
	const job = `
CREATE OR REPLACE TABLE test_prompts AS
SELECT 't' || i AS prompt_id, CAST(i AS VARCHAR) || '+0=' AS prompt, CAST(i AS VARCHAR) AS answer, 'add' AS task
FROM range(10) t(i);
CALL rollout(prompts := 'test_prompts', n := 4, max_new_tokens := 3, tag := 'eval');
CALL reward(verifier := 'regex', pattern := '^(.)');
CALL log_metrics(query := '
  SELECT ''val/'' || task || ''/pass@'' || k AS name, avg(pass_at_k(n, c, k)) AS value
  FROM (SELECT task, prompt_id, count(*) AS n, count_if(correct) AS c
        FROM this_step_scored WHERE tag = ''eval'' GROUP BY ALL),
       (VALUES (1), (4)) ks(k)
  GROUP BY task, k');
`
	mustRun(t, lake, config, job, runOpt{seed: 8})
	m := metricsOf(t, lake, 1)
	p1, p4 := m["val/add/pass@1"], m["val/add/pass@4"]
	acc := query(t, lake, "SELECT avg(correct::DOUBLE) FROM scored WHERE tag = 'eval'")
	var want float64
	fmt.Sscan(acc[0], &want)
	if _, ok := m["val/add/pass@4"]; !ok || math.Abs(p1-want) > 1e-12 || p4 < p1 {
		t.Errorf("eval metrics = %v (accuracy %v)", m, want)
	}
}

// TestTrainKLEntropyMinibatches exercises the reference model, the entropy
// bonus, the dual clip, seq-mean-token-sum-norm and several minibatches and
// epochs: the first minibatch is on-policy (ρ = 1, KL to the step-0
// reference 0 at step 1), later ones are not.
func TestTrainKLEntropyMinibatches(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs two GRPO steps with 2 epochs × 3 minibatches")
	}
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{seed: 9})
	job := strings.Replace(grpoJob, "CALL train(data := 'train_batch', lr := 1e-2, clip_high := 0.28);",
		`CALL train(data := 'train_batch', lr := 1e-2, ref := 'step=0', kl_coef := 0.1, kl_type := 'k3', entropy_coef := 0.01,
  clip_c := 3, loss_agg := 'seq-mean-token-sum-norm', max_new_tokens := 6, epochs := 2, minibatch_size := 8, micro_batch_size := 3);`, 1)
	mustRun(t, lake, config, job, runOpt{seed: 9, steps: 2})
	for step := 1; step <= 2; step++ {
		m := metricsOf(t, lake, step)
		if _, ok := m["actor/kl_loss"]; !ok {
			t.Fatalf("step %d: no actor/kl_loss in %v", step, keys2(m))
		}
		if r := m["actor/first_max_abs_log_ratio"]; !(r <= 1e-5) {
			t.Errorf("step %d: first minibatch max |log ρ| = %g", step, r)
		}
		if m["actor/ppo_kl"] == 0 {
			t.Errorf("step %d: ppo_kl is exactly 0 over 6 updates: later minibatches should be off-policy", step)
		}
	}
	st := checkpointFiles(t, lake, 2)["trainer_state.json"]
	if !bytes.Contains(st, []byte(`"step": 12`)) {
		t.Errorf("trainer_state after 2 steps × 2 epochs × 3 minibatches should count 12 updates:\n%s", st)
	}
}
