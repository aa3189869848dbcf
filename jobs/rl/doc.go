// Package rl holds rljob's compute stages for RL post-training, registered
// into jobs.DefaultRegistry at init (cmd/rljob imports it for its side
// effect):
//
//	init_policy  a fresh model + tokenizer       → checkpoints/run=R/step=S
//	sft          cross-entropy on completions    → checkpoints, metrics
//	rollout      n samples per prompt            → rollouts   (sharded)
//	train        one PPO-clip update (docs/RL.md) → checkpoints, metrics
//
// Each stage is one Run function that reads top to bottom: inputs, checks,
// work, outputs, summary. Its doc comment states the objective exactly.
//
// # Checkpoints and policy resolution
//
// A checkpoint is the lake unit checkpoints/run=R/step=S/part-<call>-0/ (HF
// layout: config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, and, after sft or train, optimizer.safetensors and
// trainer_state.json), committed through the lake's commit protocol. It is
// keyed by (step, call), so one step may hold several: sft after train
// (ReLIFT), or init_policy then sft.
//
// A policy argument names a checkpoint:
//
//	'latest'  the newest committed checkpoint of this run visible to the
//	          call: any step < S, or step S itself when an earlier call of
//	          this step (a smaller statement index) wrote it. One written by
//	          this call or a later one (left by an interrupted attempt of
//	          the step) is not visible, so a rerun sees exactly what the
//	          first attempt saw.
//	'step=K'  the newest checkpoint of step K (same visibility rule).
//	a path    a folder with config.json, model.safetensors, tokenizer.json
//	          (e.g. an HF model folder), relative to the job file's folder.
//
// Every call loads its policy (weights, tokenizer) from the lake: no state
// lives between calls, so a crashed run that resumes reproduces the same
// bytes. Each objective keeps its own AdamW moments (stageOptimizer): train
// continues those of the run's newest train checkpoint, sft those of its
// newest sft checkpoint, fresh when there is none (as verl and TRL start RL
// with a new optimizer after SFT) — so an sft between two train calls
// neither resets nor pollutes train's moments.
//
// A typical run is several job files over one --run: prepare.sql
// (init_policy) run once as step 0, sft.sql as step 1, then grpo.sql
// (rollout, reward, SQL advantages, train) for the remaining steps, with
// eval.sql steps in between — evaluation writes no checkpoint, so 'latest'
// still names the policy being trained. init_policy(policy := 'run=NAME')
// starts several runs (RL seeds) from one SFT run's checkpoint (at a
// complete step of that run).
//
// Under --shard i/n, rollout, reward and logprobs are sharded; the other
// stages run on shard 0, and the runner keeps the shards in lockstep (see
// package jobs), so every shard resolves 'latest' to the same checkpoint.
//
// # Token layout
//
// A prompt is encoded as [BOS] + Encode(prompt) (BOS only when the
// tokenizer has one); a completion is what the sampler produced, including
// the EOS token that ended it (finish_reason 'stop'), and its text is the
// decoding of its tokens without that final EOS. SFT trains on
// Encode(completion) + [EOS].
//
// An episode (rollout with env :=, episodes.go, docs/episodes.md) is one
// rollouts row whose completion_tokens interleave the policy's turns and
// the environment's observations, the observations encoded once with
// Encode (no BOS) and appended as ids; policy_mask tells them apart, and
// train and logprobs (policymask.go) use only the policy's positions.
//
// # Randomness
//
// Every seed comes from jobs.DeriveSeed: a rollout sample's seed from (run
// seed, step, call, fnv64a(prompt_id), sample_idx) — not the shard, the
// batch or the thread count — so sharded and unsharded runs give the same
// rows; sft/train shuffles from (seed, step, call, epoch); init_policy's
// weights from seed (or (run seed, step, call)).
package rl
