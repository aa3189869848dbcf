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
// A checkpoint is the lake unit checkpoints/run=R/step=S/ (HF layout:
// config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// and, after sft or train, optimizer.safetensors and trainer_state.json),
// committed through the lake's commit protocol. The unit is the step folder,
// so a step holds at most ONE checkpoint: init_policy, sft and train each
// write the checkpoint of the step they run in, and a second
// checkpoint-writing call in the same step is an error (put init_policy and
// sft in separate steps, e.g. an init job run once before the sft job).
//
// A policy argument names a checkpoint:
//
//	'latest'  the newest committed checkpoint of this run that is visible
//	          at this point of the step: any step < S, or step S itself
//	          when an earlier call of this step (a smaller statement index)
//	          wrote it. A checkpoint of step S written by this call or a
//	          later one (left by an interrupted earlier attempt of the step)
//	          is not visible, so a rerun sees exactly what the first attempt
//	          saw.
//	'step=K'  checkpoint K of this run (with the same visibility rule).
//	a path    a folder with config.json, model.safetensors, tokenizer.json
//	          (e.g. another run's checkpoint or an HF model folder).
//
// Every call loads its policy (weights, optimizer moments, tokenizer) from
// the lake: no state lives between calls, so a crashed run that resumes
// reproduces the same bytes. Optimizer moments carry over between calls of
// the same stage (train → train, sft → sft); a checkpoint written by
// another stage starts fresh AdamW moments (as verl and TRL start RL with a
// new optimizer after SFT).
//
// A typical run is three job files over one --run: init.sql (init_policy)
// run once as step 0, sft.sql as step 1, then grpo.sql (rollout, reward,
// SQL advantages, train) for the remaining steps, with eval.sql steps
// (rollout tag 'eval' + reward + pass_at_k + log_metrics) in between —
// evaluation writes no checkpoint, so 'latest' still names the policy
// being trained. init_policy(policy := 'run=NAME') starts several runs (RL
// seeds) from one SFT run's checkpoint.
//
// Under --shard i/n only rollout (and reward) are sharded; 'latest' on a
// shard i > 0 sees the checkpoints shard 0 has committed so far, so shards
// must run after shard 0 finished the previous step (a warning says when
// not).
//
// # Token layout
//
// A prompt is encoded as [BOS] + Encode(prompt) (BOS only when the
// tokenizer has one); a completion is what the sampler produced, including
// the EOS token that ended it (finish_reason 'stop'), and its text is the
// decoding of its tokens without that final EOS. SFT trains on
// Encode(completion) + [EOS].
//
// # Randomness
//
// Every seed comes from jobs.DeriveSeed: a rollout sample's seed from (run
// seed, step, call, fnv64a(prompt_id), sample_idx) — not the shard, the
// batch or the thread count — so sharded and unsharded runs give the same
// rows; sft/train shuffles from (seed, step, call, epoch); init_policy's
// weights from seed (or (run seed, step, call)).
package rl
