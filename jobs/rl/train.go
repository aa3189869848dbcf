package rl

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/trainer"
	"github.com/rljob/rljob/trainer/loss"
)

// trainStage makes one PPO-clip policy update (docs/RL.md "Policy loss"),
// via trainer/loss. Per completion token t of row i, A = advantage_i:
//
//	log_ρ = clamp(log π_θ(t) − log π_old(t), −20, 20);  ρ = exp(log_ρ)
//	ℓ     = max(−A·ρ, −A·clip(ρ, 1 − clip_low, 1 + clip_high))
//	ℓ     = min(ℓ, −A·clip_c)  where A < 0, when clip_c > 1 (dual clip)
//	ℓ     = w·ℓ, w = min(exp(log π_old(t) − log π_behav(t)), tis_cap)   with old_logprobs only (TIS)
//	loss  = agg(ℓ) − entropy_coef·agg(H) + kl_coef·agg(KL_kl_type(log π_θ, log π_ref))
//
// log π_θ is recomputed on prompt_tokens + completion_tokens at the sampling
// temperature; π_old is the logprobs column (the behaviour policy's, or, with
// an old_logprobs column, a recomputed proximal policy, and π_behav is
// old_logprobs: truncated importance sampling as verl's tis_imp_ratio_cap and
// TRL's vllm_importance_sampling_cap); agg is loss_agg over the whole
// minibatch (micro-batches share its denominators). One AdamW update per
// minibatch; with one minibatch and one epoch (the defaults) ρ = 1 and the
// gradient is −A·∇log π_θ aggregated — GRPO/REINFORCE on-policy.
type trainStage struct{}

func (trainStage) Spec() jobs.StageSpec {
	return jobs.StageSpec{
		Name: "train",
		Doc: "One policy-gradient update, exactly as docs/RL.md: per completion token, log_ρ = clamp(log π_θ − log π_old, −20, 20), " +
			"ρ = exp(log_ρ), ℓ = max(−A·ρ, −A·clip(ρ, 1 − clip_low, 1 + clip_high)), and with clip_c > 1 (dual clip) " +
			"ℓ = min(ℓ, −A·clip_c) where A < 0; with an old_logprobs column (truncated importance sampling, TIS) " +
			"ℓ = w·ℓ with w = min(exp(log π_old − log π_behav), tis_cap), π_old = logprobs (a recomputed proximal policy, e.g. " +
			"the logprobs stage's), π_behav = old_logprobs (the policy that sampled the tokens: an external engine, a stale replay row); " +
			"w is a constant to the gradient and weights the policy-gradient term only (verl tis_imp_ratio_cap, TRL " +
			"vllm_importance_sampling_cap). loss = agg(ℓ) − entropy_coef·agg(H) + kl_coef·agg(KL(π_θ‖π_ref)) with one " +
			"aggregation loss_agg for all three (token-mean | seq-mean-token-mean | seq-mean-token-sum | seq-mean-token-sum-norm " +
			"with L = max_new_tokens) and KL estimator kl_type (k1 | k2 | k3). π_old is the behaviour logprobs column, A the " +
			"advantage column (one per sequence); log π_θ is recomputed at the sampling temperature on prompt_tokens + completion_tokens. " +
			"For each of epochs passes the rows are split into minibatches of minibatch_size sequences (shuffled from (--seed, step, call, " +
			"epoch) when there are several), each one AdamW update (constant lr, global-norm clipping at max_grad_norm) whose gradient " +
			"is the exact full-minibatch gradient (micro-batch denominators are global). With one minibatch and one epoch, ρ = 1 and this " +
			"is the on-policy REINFORCE/GRPO gradient −A·∇log π. Optimizer moments continue from the run's newest train checkpoint (an sft in between keeps its own). Commits this step's " +
			"checkpoint (the full state every full_state_every calls, a light one in between that loading replays: docs/checkpoints.md) and metrics actor/{pg_loss, pg_clipfrac, pg_clipfrac_lower, ppo_kl, entropy, kl_loss, grad_norm, lr, " +
			"first_max_abs_log_ratio} (with old_logprobs also actor/{tis_weight_mean, tis_clipfrac, tis_behav_kl}: mean w, fraction " +
			"of tokens truncated, mean log π_behav − log π_old), critic/score/{mean,max,min} (when data has reward), critic/advantages/{mean,max,min}, " +
			"response_length/{mean,max,min,clip_ratio}, train/{sequences,tokens}, timing_s/train, perf/throughput. Aggregation of " +
			"the metrics as in verl: actor/entropy is the batch's entropies aggregated with loss_agg (from each row's epoch-0 forward: " +
			"the pre-update policy when an epoch is one minibatch); pg_loss and kl_loss are loss_agg aggregates, averaged over updates; " +
			"pg_clipfrac, pg_clipfrac_lower and ppo_kl are token means whatever loss_agg. " +
			"Empty data (e.g. every group filtered out by group_std > 0): the policy is committed unchanged for this step " +
			"(so every step has a checkpoint) with train/sequences = 0. Runs on shard 0 only.",
		Args: append([]jobs.ArgSpec{
			{Name: "data", Type: jobs.TypeTable, Required: true,
				Doc: "table or query with prompt_tokens, completion_tokens, logprobs (π_old, one per completion token) and advantage; optional reward, finish_reason, temperature, rollout_id, old_logprobs (behaviour log-probs, one per completion token: turns on TIS), and policy_mask (BOOLEAN[], episode rows: the loss, ratio and token counts cover only the tokens where it is true)"},
			{Name: "policy", Type: jobs.TypeString, Default: "latest", Doc: policyDoc + ": the policy to update (should be the one that sampled data)"},
			dtypeArgSpec(""),
			{Name: "ref", Type: jobs.TypeString, Doc: "reference policy for the KL term: 'step=0', 'latest', 'run=X[/step=K]' or a checkpoint folder; none = no KL"},
			{Name: "lr", Type: jobs.TypeFloat, Default: 1e-6, Doc: "learning rate (verl's actor default 1e-6; tiny models want ~1e-3)"},
			{Name: "clip_low", Type: jobs.TypeFloat, Default: 0.2, Doc: "ε_low: ρ clipped below at 1 − clip_low"},
			{Name: "clip_high", Type: jobs.TypeFloat, Default: 0.2, Doc: "ε_high: ρ clipped above at 1 + clip_high (DAPO clip-higher: 0.28)"},
			{Name: "clip_c", Type: jobs.TypeFloat, Default: 0.0, Doc: "dual-clip constant c > 1 (verl: 3.0); 0 = off"},
			{Name: "loss_agg", Type: jobs.TypeString, Default: "token-mean",
				Enum: []string{"token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"}, Doc: "token-mean | seq-mean-token-mean | seq-mean-token-sum | seq-mean-token-sum-norm (docs/RL.md)"},
			{Name: "kl_coef", Type: jobs.TypeFloat, Default: 0.0, Doc: "coefficient of the KL loss to ref (needs ref)"},
			{Name: "kl_type", Type: jobs.TypeString, Default: "k3", Enum: []string{"k1", "k2", "k3", "kl", "mse", "low_var_kl"}, Doc: "KL estimator: k1 = d, k2 = d²/2, k3 = low-variance (verl names kl, mse, low_var_kl accepted)"},
			{Name: "entropy_coef", Type: jobs.TypeFloat, Default: 0.0, Doc: "entropy bonus coefficient"},
			{Name: "epochs", Type: jobs.TypeInt, Default: int64(1), Doc: "passes over data (PPO epochs)"},
			{Name: "minibatch_size", Type: jobs.TypeInt, Default: int64(0), Doc: "sequences per optimizer update; 0 = all rows (one update per epoch)"},
			{Name: "micro_batch_size", Type: jobs.TypeInt, DefaultDoc: "the most (up to 16) that fit the memory budget (rljob run --memory)", Doc: "sequences per forward/backward pass (memory only)"},
			keepLogitsArg,
			{Name: "max_grad_norm", Type: jobs.TypeFloat, Default: 1.0, Doc: "clip the global gradient norm; 0 = off"},
			{Name: "weight_decay", Type: jobs.TypeFloat, Default: 0.01, Doc: "AdamW decoupled weight decay (matrices only)"},
			{Name: "temperature", Type: jobs.TypeFloat, DefaultDoc: "the data's temperature column (0 → 1), else 1",
				Doc: "temperature of the recomputed log π_θ; must be the sampling temperature for ρ = 1 on-policy"},
			{Name: "max_new_tokens", Type: jobs.TypeInt, Doc: "L of seq-mean-token-sum-norm (the rollout's max_new_tokens); also response_length/clip_ratio"},
			{Name: "tis_cap", Type: jobs.TypeFloat, Default: 2.0, Doc: "C of the TIS weight min(exp(logprobs − old_logprobs), C), used when data has old_logprobs (verl, TRL: 2)"},
			{Name: "full_state_every", Type: jobs.TypeInt, DefaultDoc: "4 (full fine-tuning), 16 (LoRA)",
				Doc: "write the full training state (weights or adapters, AdamW moments, tokenizer) at every K-th train call; the calls in between write a light checkpoint (trainer_state.json and the rows trained on, train_inputs.safetensors) that loading replays from its parent, bit for bit (docs/checkpoints.md); 1 = a full state every call"},
		}, loraArgSpecs()...),
		Outputs: func(jobs.Args) []string { return []string{arrowio.TableCheckpoints, arrowio.TableMetrics} },
		Check: func(a jobs.Args) (string, string) {
			cfg := lossConfig(a)
			if err := cfg.Validate(); err != nil {
				return err.Error(), "see docs/RL.md for the ranges"
			}
			switch {
			case a.Float("kl_coef") != 0 && !a.Has("ref"):
				return "kl_coef needs a reference policy", "add ref := 'step=0'"
			case !(a.Float("lr") >= 0):
				return "lr must be >= 0", ""
			case a.Int("epochs") < 1:
				return "epochs must be >= 1", ""
			case a.Int("minibatch_size") < 0 || a.Has("micro_batch_size") && a.Int("micro_batch_size") < 1:
				return "minibatch_size must be >= 0 and micro_batch_size >= 1", ""
			case a.Has("temperature") && !(a.Float("temperature") > 0):
				return "temperature must be > 0", "use the rollout's temperature (1.0 for greedy rollouts)"
			case a.Float("weight_decay") < 0 || a.Float("max_grad_norm") < 0:
				return "weight_decay and max_grad_norm must be >= 0", ""
			case !(a.Float("tis_cap") > 0):
				return "tis_cap must be > 0", "tis_cap := 2.0 (verl and TRL recommend 2)"
			case a.Has("full_state_every") && a.Int("full_state_every") < 1:
				return "full_state_every must be >= 1", "full_state_every := 1 writes the full state at every call"
			}
			return checkLoRA(a)
		},
	}
}

// lossConfig maps the stage arguments onto trainer/loss.
func lossConfig(a jobs.Args) loss.Config {
	kl, _ := loss.ParseKLType(a.String("kl_type"))
	return loss.Config{
		ClipLow: a.Float("clip_low"), ClipHigh: a.Float("clip_high"), ClipC: a.Float("clip_c"),
		Agg: loss.Agg(a.String("loss_agg")), NormLen: int(a.Int("max_new_tokens")),
		KLCoef: a.Float("kl_coef"), KLType: kl, EntropyCoef: a.Float("entropy_coef"),
		TISCap: a.Float("tis_cap"),
	}
}

// trainRow is one sequence of the update.
type trainRow struct {
	tokens   []int32   // prompt + completion
	start    int       // len(prompt): index of the first completion token
	old      []float32 // log π_old per completion token (the logprobs column)
	behav    []float32 // log π_behav per completion token (the old_logprobs column), or nil: no TIS
	ref      []float32 // log π_ref per completion token (with a reference)
	ent      []float32 // entropy H per completion token at the row's first forward (epoch 0), for actor/entropy
	adv      float64
	reward   float64
	hasR     bool
	finished string // finish_reason
	temp     float64
	hasTemp  bool
	idx      []int32 // completion indices of the policy's tokens (policy_mask); nil: all. old, behav, ref, ent follow it
}

// completion is the number of trained completion tokens.
func (r *trainRow) completion() int {
	if r.idx != nil {
		return len(r.idx)
	}
	return len(r.tokens) - r.start
}

// at is the completion index of trained token j.
func (r *trainRow) at(j int) int {
	if r.idx != nil {
		return int(r.idx[j])
	}
	return j
}

// Run reads the rows (ordered by rollout_id when present), loads the policy
// (and reference), then makes epochs × minibatches AdamW updates of the
// objective in the stage doc with trainer/loss, and commits the checkpoint
// and metrics.
func (trainStage) Run(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) (jobs.Summary, error) {
	t0 := time.Now()
	defer kernels.ReserveSchedulerP()() // kernels/threads.go

	// Inputs: the rows and the policy.
	rows, err := readTrainRows(ctx, sc, a)
	if err != nil {
		return jobs.Summary{}, err
	}
	freeGarbage()
	logMemory(sc, "before loading the policy")
	pol, err := loadPolicy(sc, a, "policy")
	if err != nil {
		return jobs.Summary{}, err
	}
	defer releaseModel(pol.Model)
	logMemory(sc, "policy loaded")

	// Empty data: carry the policy forward unchanged.
	if _, _, err := policyLoRA(sc, a, pol); err != nil {
		return jobs.Summary{}, err
	}
	if len(rows) == 0 {
		return carryForward(ctx, sc, a, pol, t0)
	}
	takeOver(pol)
	plain := pol.Model.LoRA == nil
	if err := applyLoRA(sc, a, pol); err != nil {
		return jobs.Summary{}, err
	}
	model := pol.Model

	// Checks: lengths, temperature, loss config.
	temp, err := trainTemperature(a, rows)
	if err != nil {
		return jobs.Summary{}, err
	}
	if err := checkTrainRows(a, model, rows); err != nil {
		return jobs.Summary{}, err
	}
	cfg := lossConfig(a)
	if cfg.Agg == loss.SeqMeanTokenSumNorm && cfg.NormLen <= 0 {
		return jobs.Summary{}, &jobs.UsageError{Pos: a.CallPos(), Msg: "train: loss_agg 'seq-mean-token-sum-norm' needs max_new_tokens (its L)",
			Hint: "pass the rollout's max_new_tokens := ..."}
	}
	maxT := 0
	for _, r := range rows {
		maxT = max(maxT, len(r.tokens))
	}
	var refBytes uint64
	if a.Has("ref") {
		refBytes = 4 * uint64(len(model.Params))
	}
	micro, keep, err := chooseMicro(sc, a, pol, maxT, len(rows), refBytes)
	if err != nil {
		return jobs.Summary{}, err
	}
	if a.Has("ref") {
		ref, _, err := loadRef(sc, a, "ref")
		if err != nil {
			return jobs.Summary{}, err
		}
		err = refLogps(ref, rows, temp, micro)
		ref.Release()
		if err != nil {
			return jobs.Summary{}, err
		}
	}
	defer prepareMemory(sc, pol, maxT, micro, len(rows), keep)()

	// Optimizer: moments continue from the newest train checkpoint, else fresh.
	opt, optSrc, err := stageOptimizer(sc, pol)
	if err != nil {
		return jobs.Summary{}, err
	}
	defer releaseOpt(opt)
	logMemory(sc, "optimizer loaded")

	// Work: epochs × minibatches, each one AdamW update.
	upd := newTrainUpdate(sc, a, cfg, temp, micro, len(rows))
	if plain && model.LoRA != nil {
		upd.FreshLoRA = &model.LoRA.Config
	}
	bar := sc.Bar("train", int64(upd.Epochs*((len(rows)+upd.MinibatchSize-1)/upd.MinibatchSize)))
	defer bar.Done()
	res, err := upd.run(ctx, model, opt, rows, func() { bar.Add(1) })
	if err != nil {
		return jobs.Summary{}, err
	}
	logMemory(sc, "updated")

	// Outputs: checkpoint (full, or light: the update's record and rows), then metrics.
	if err := commitTrained(sc, a, pol, opt, optSrc, upd, rows, !a.Has("micro_batch_size")); err != nil {
		return jobs.Summary{}, err
	}
	metrics, err := trainMetrics(res, rows, cfg, int(a.Int("max_new_tokens")), time.Since(t0).Seconds())
	if err != nil {
		return jobs.Summary{}, err
	}
	if _, err := commitMetrics(ctx, sc, metrics, t0); err != nil {
		return jobs.Summary{}, err
	}

	// Summary.
	return jobs.Summary{Table: arrowio.TableCheckpoints, Rows: 1,
		Note: fmt.Sprintf("train: %d updates over %d sequences from policy step %d", res.updates, len(rows), pol.Step),
		Metrics: map[string]float64{
			"pg_loss": metrics["actor/pg_loss"], "grad_norm": metrics["actor/grad_norm"],
			"clipfrac": metrics["actor/pg_clipfrac"], "first_max_abs_log_ratio": res.firstMaxAbsLogR,
		}}, nil
}

// trainMetrics are the call's metrics (the stage doc lists them).
func trainMetrics(res updateResult, rows []trainRow, cfg loss.Config, maxNew int, secs float64) (map[string]float64, error) {
	updates := float64(res.updates)
	metrics := res.total.Metrics()
	var err error
	if metrics["actor/entropy"], err = batchEntropy(rows, cfg); err != nil {
		return nil, errf("train: %w", err)
	}
	metrics["actor/pg_loss"] = res.total.PGLoss / updates // mean over updates (each a full-minibatch aggregate)
	if res.total.HasKL {
		metrics["actor/kl_loss"] = res.total.KLLoss / updates
	}
	metrics["actor/grad_norm"] = res.gradNormSum / updates
	metrics["actor/lr"] = res.lr
	metrics["actor/first_max_abs_log_ratio"] = res.firstMaxAbsLogR
	for k, v := range rowMetrics(rows, maxNew) {
		metrics[k] = v
	}
	metrics["timing_s/train"] = secs
	metrics["perf/throughput"] = float64(res.tokens) / max(secs, 1e-9)
	return metrics, nil
}

// checkTrainRows checks the rows' lengths and token ids against model.
func checkTrainRows(a jobs.Args, model *trainer.Model, rows []trainRow) error {
	for i := range rows {
		if len(rows[i].tokens) > model.Config.MaxPositionEmbeddings {
			return &jobs.DataError{Pos: a.Pos("data"), Column: "completion_tokens",
				Msg: fmt.Sprintf("train: row %d has %d prompt+completion tokens, more than max_position_embeddings %d", i, len(rows[i].tokens), model.Config.MaxPositionEmbeddings)}
		}
		for _, t := range rows[i].tokens {
			if t < 0 || int(t) >= model.Config.VocabSize {
				return &jobs.DataError{Pos: a.Pos("data"), Column: "completion_tokens",
					Msg: fmt.Sprintf("train: row %d has token %d outside the policy's vocabulary [0,%d): were these rollouts sampled from another tokenizer?", i, t, model.Config.VocabSize)}
			}
		}
	}
	return nil
}

// carryForward commits the policy unchanged as this step's checkpoint (a
// light one's files are copied: its parent link still names the same
// state) with train/sequences = 0.
func carryForward(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, pol *policy, t0 time.Time) (jobs.Summary, error) {
	if err := copyCheckpoint(sc, a, pol.Dir); err != nil {
		return jobs.Summary{}, err
	}
	cacheRekey(pol.Dir, sc.Lake.Path(checkpointUnit(sc.Run, sc.Step, sc.Call).Dir())) // the copy is the same state
	if _, err := commitMetrics(ctx, sc, map[string]float64{"train/sequences": 0, "train/tokens": 0, "timing_s/train": time.Since(t0).Seconds()}, t0); err != nil {
		return jobs.Summary{}, err
	}
	return jobs.Summary{Table: arrowio.TableCheckpoints, Skipped: true,
		Note: "train: no rows in data: " + sc.ExplainNoRows(ctx) + "; policy committed unchanged for this step"}, nil
}

// newTrainUpdate is the call's trainUpdate from its arguments.
func newTrainUpdate(sc *jobs.StageCtx, a jobs.Args, cfg loss.Config, temp float64, micro, nrows int) *trainUpdate {
	mb := int(a.Int("minibatch_size"))
	if mb <= 0 || mb > nrows {
		mb = nrows
	}
	u := &trainUpdate{Loss: cfg, LR: a.Float("lr"), WeightDecay: a.Float("weight_decay"), MaxGradNorm: a.Float("max_grad_norm"),
		Epochs: int(a.Int("epochs")), MinibatchSize: mb, Micro: micro, Temperature: temp,
		Seed: sc.Seed, Step: sc.Step, Call: sc.Call}
	if hasDType(a) {
		u.DType = a.String("dtype")
	}
	return u
}

// commitTrained commits the updated policy as this step's checkpoint: a
// light one (trainer_state.json with the update's record, the rows) while
// the chain since the last full state is shorter than full_state_every,
// else the full state (weights or adapters, moments, tokenizer). The
// model and moments of a light one stay in the process's cache for the
// next step. recordMicro: the micro-batch was chosen, not given.
func commitTrained(sc *jobs.StageCtx, a jobs.Args, pol *policy, opt *trainer.AdamW, optSrc string, upd *trainUpdate, rows []trainRow, recordMicro bool) error {
	model := pol.Model
	sched := trainer.Schedule{Kind: "constant", LR: upd.LR}
	ck := &trainer.Checkpoint{Model: model, Opt: opt, Tokenizer: pol.Tok, State: trainerState(sc, opt, sched, sc.Seed, pol.Step)}
	if recordMicro {
		ck.State.Extra[microKey] = upd.Micro
	}
	if !lightWrite(a, pol, optSrc) {
		return commitCheckpoint(sc, a, ck, pol.Dir)
	}
	dest := sc.Lake.Path(checkpointUnit(sc.Run, sc.Step, sc.Call).Dir())
	write, state, err := lightFiles(ck.State, dest, pol, optSrc, upd, rows)
	if err != nil {
		return fmt.Errorf("rl: train: light checkpoint %s: %w", dest, err)
	}
	if err := commitFiles(sc, a, write, pol.Dir, append([]string{pol.Dir}, lightChain(pol.Dir)...)); err != nil {
		return err
	}
	ck.Dir, ck.State = dest, state
	cachePut(dest, ck, false) // when lent (an in-process shard), ck stays the stage's and is released
	return nil
}

// gradAccumulator computes the gradient of one minibatch, micro-batch by
// micro-batch, into model.Grads (accumulated: call ZeroGrad first).
type gradAccumulator struct {
	model   *trainer.Model
	rows    []trainRow
	cfg     loss.Config
	temp    float32
	micro   int  // sequences per forward/backward
	withRef bool // rows carry ref log-probabilities
	withTIS bool // rows carry behaviour log-probabilities (old_logprobs)
	tokens  int  // prompt+completion tokens run through forward/backward so far

	// scratch, reused across micro-batches
	lp, ent, old, behav, ref, gLogP, gEnt []float32 // (T) flat ragged completion tokens
	dlogp, dent                           []float32 // (B, T) padded positions
}

// minibatch accumulates ∂loss/∂θ of the minibatch mb (row indices) into
// model.Grads and returns its loss.Stats. Every micro-batch is aggregated
// with the denominators of the whole minibatch (loss.GlobalNorm), so the
// sum of the micro-batch gradients is the minibatch gradient. Completion
// token j of a row whose prompt has s tokens is predicted at position
// s + j − 1: that is where its log π_θ is read and ∂loss/∂log π_θ written.
func (g *gradAccumulator) minibatch(mb []int) (loss.Stats, error) {
	var layouts []*loss.Batch
	for lo := 0; lo < len(mb); lo += g.micro {
		layouts = append(layouts, &loss.Batch{Offsets: completionOffsets(g.rows, mb[lo:min(lo+g.micro, len(mb))])})
	}
	norm, err := loss.GlobalNorm(layouts...)
	if err != nil {
		return loss.Stats{}, errf("train: %w", err)
	}
	var st loss.Stats
	for k, lo := 0, 0; lo < len(mb); k, lo = k+1, lo+g.micro {
		micro := mb[lo:min(lo+g.micro, len(mb))]
		offsets := layouts[k].Offsets
		b, start := padBatch(len(micro), func(i int) ([]int32, int) { return g.rows[micro[i]].tokens, g.rows[micro[i]].start })
		logp, ent, err := g.model.ForwardLogp(b, trainer.NextTokenTargets(b, start), g.temp, true)
		if err != nil {
			return loss.Stats{}, errf("train: forward: %w", err)
		}
		// Gather the completion positions into the flat ragged layout.
		T := layouts[k].NumTokens()
		g.lp, g.ent, g.old = resize(g.lp, T), resize(g.ent, T), resize(g.old, T)
		g.ref, g.gLogP, g.gEnt = resize(g.ref, T), resize(g.gLogP, T), resize(g.gEnt, T)
		g.behav = resize(g.behav, T)
		for i, r := range micro {
			row := &g.rows[r]
			for j := range row.completion() {
				pos, t := i*b.T+row.start+row.at(j)-1, offsets[i]+j
				g.lp[t], g.ent[t], g.old[t] = logp[pos], ent[pos], row.old[j]
				if g.withRef {
					g.ref[t] = row.ref[j]
				}
				if g.withTIS {
					g.behav[t] = row.behav[j]
				}
			}
			if row.ent == nil { // first forward of the row: epoch 0
				row.ent = slices.Clone(g.ent[offsets[i] : offsets[i]+row.completion()])
			}
			g.tokens += len(row.tokens)
		}
		lb := &loss.Batch{Offsets: offsets, Adv: advs(g.rows, micro), LogP: g.lp, OldLogP: g.old, Entropy: g.ent}
		if g.withRef {
			lb.RefLogP = g.ref
		}
		if g.withTIS {
			lb.BehavLogP = g.behav
		}
		grads := loss.Grads{LogP: g.gLogP}
		if g.cfg.EntropyCoef != 0 {
			grads.Entropy = g.gEnt
		}
		s, err := loss.Compute(grads, lb, &g.cfg, norm)
		if err != nil {
			return loss.Stats{}, errf("train: loss: %w", err)
		}
		st.Add(s)
		// Scatter ∂loss/∂logp (and ∂loss/∂H) back to the (B, T) positions.
		g.dlogp = resize(g.dlogp, b.B*b.T)
		clear(g.dlogp)
		var dH []float32
		if grads.Entropy != nil {
			g.dent = resize(g.dent, b.B*b.T)
			clear(g.dent)
			dH = g.dent
		}
		for i, r := range micro {
			row := &g.rows[r]
			for j := range row.completion() {
				pos, t := i*b.T+row.start+row.at(j)-1, offsets[i]+j
				g.dlogp[pos] = g.gLogP[t]
				if dH != nil {
					dH[pos] = g.gEnt[t]
				}
			}
		}
		if err := g.model.BackwardLogp(g.dlogp, dH); err != nil {
			return loss.Stats{}, errf("train: backward: %w", err)
		}
	}
	return st, nil
}

// readTrainRows reads and checks the data argument's rows.
func readTrainRows(ctx context.Context, sc *jobs.StageCtx, a jobs.Args) ([]trainRow, error) {
	from, colsRef := source(a.String("data"))
	if err := sc.RequireColumns(ctx, "data", colsRef, "prompt_tokens", "completion_tokens", "logprobs", "advantage"); err != nil {
		return nil, err
	}
	have, _, err := columnSet(ctx, sc, "data", colsRef)
	if err != nil {
		return nil, err
	}
	opt := func(col, cast string) string {
		if n, ok := have[col]; ok {
			return fmt.Sprintf("CAST(%s AS %s)", jobs.QuoteIdent(n), cast)
		}
		return "CAST(NULL AS " + cast + ")"
	}
	_, withTIS := have["old_logprobs"]
	order := "prompt_tokens, completion_tokens, logprobs, advantage"
	if n, ok := have["rollout_id"]; ok {
		order = jobs.QuoteIdent(n) + ", " + order
	}
	q := fmt.Sprintf(`SELECT CAST(prompt_tokens AS INTEGER[]), CAST(completion_tokens AS INTEGER[]), CAST(logprobs AS FLOAT[]),
  CAST(advantage AS DOUBLE), %s, %s, %s, %s, %s, %s
FROM %s ORDER BY %s`, opt("reward", "DOUBLE"), opt("finish_reason", "VARCHAR"), opt("temperature", "DOUBLE"), opt("rollout_id", "VARCHAR"),
		opt("old_logprobs", "FLOAT[]"), opt(policyMaskColumn, "BOOLEAN[]"), from, order)
	table := a.String("data")
	if jobs.IsQuery(table) {
		table = "(the data query)"
	}
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return nil, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	defer rr.Release()
	var rows []trainRow
	n := 0
	err = rowsOf(rr, func(rec arrow.RecordBatch, i int) error {
		// A bad row is named by table, row number (in the stage's order:
		// rollout_id, then the tokens) and rollout_id when there is one.
		row := fmt.Sprintf("row %d", n)
		if id, ok := strAt(rec.Column(7), i); ok {
			row += fmt.Sprintf(" (rollout_id %q)", id)
		}
		bad := func(col, msg string) *jobs.DataError {
			return &jobs.DataError{Pos: a.Pos("data"), Table: table, Column: col, Msg: fmt.Sprintf("train: data %s %s: %s", table, row, msg)}
		}
		p, ok := i32s(rec.Column(0), i)
		if !ok {
			return bad("prompt_tokens", "prompt_tokens is NULL or holds NULLs")
		}
		c, ok := i32s(rec.Column(1), i)
		if !ok {
			return bad("completion_tokens", "completion_tokens is NULL or holds NULLs")
		}
		// logprobs, and old_logprobs when data has it: one finite value per completion token.
		perToken := func(col string, k int) ([]float32, error) {
			lp, ok := f32s(rec.Column(k), i)
			if !ok {
				e := bad(col, col+" is NULL or holds NULLs")
				if col == "old_logprobs" {
					e.Hint = "rows sampled by the policy of logprobs itself can take old_logprobs := coalesce(old_logprobs, logprobs) (w = 1)"
				}
				return nil, e
			}
			if len(lp) != len(c) {
				return nil, bad(col, fmt.Sprintf("%d %s for %d completion tokens", len(lp), col, len(c)))
			}
			for k, v := range lp {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					e := bad(col, fmt.Sprintf("%s[%d] is %v (the behaviour log-probabilities must be finite)", col, k, v))
					e.Hint = fmt.Sprintf("drop or recompute such rows: WHERE list_bool_and(list_transform(%s, x -> isfinite(x)))", col)
					return nil, e
				}
			}
			return lp, nil
		}
		lp, err := perToken("logprobs", 2)
		if err != nil {
			return err
		}
		var behav []float32
		if withTIS {
			if behav, err = perToken("old_logprobs", 8); err != nil {
				return err
			}
			if behav == nil {
				behav = []float32{} // non-nil marks "data has old_logprobs" even for an empty completion
			}
		}
		if len(p) == 0 {
			return bad("prompt_tokens", "prompt_tokens is empty (the first completion token needs a prefix)")
		}
		adv, ok := f64At(rec.Column(3), i)
		if !ok || math.IsNaN(adv) || math.IsInf(adv, 0) {
			return &jobs.DataError{Pos: a.Pos("data"), Table: table, Column: "advantage", Msg: fmt.Sprintf("train: data %s %s: advantage is NULL or not finite", table, row),
				Hint: "rows whose reward is NULL get a NULL advantage: filter them (WHERE advantage IS NOT NULL)"}
		}
		r := trainRow{tokens: append(p, c...), start: len(p), old: lp, behav: behav, adv: adv}
		if mask, ok := bools(rec.Column(9), i); ok {
			if len(mask) != len(c) {
				return bad(policyMaskColumn, fmt.Sprintf("%d policy_mask values for %d completion tokens", len(mask), len(c)))
			}
			r.idx = maskIndex(mask)
			r.old, r.behav = compact(lp, r.idx), compact(behav, r.idx)
		}
		r.reward, r.hasR = f64At(rec.Column(4), i)
		r.finished, _ = strAt(rec.Column(5), i)
		r.temp, r.hasTemp = f64At(rec.Column(6), i)
		rows = append(rows, r)
		n++
		return nil
	})
	if err != nil {
		return nil, jobs.ClassifySQL(err, a.Pos("data"), q)
	}
	return rows, nil
}

// trainTemperature is the temperature argument, else the data's uniform
// temperature column (0, greedy, → 1: greedy rollouts store logprobs at
// temperature 1), else 1.
func trainTemperature(a jobs.Args, rows []trainRow) (float64, error) {
	if a.Has("temperature") {
		return a.Float("temperature"), nil
	}
	t, seen := 1.0, false
	for i, r := range rows {
		if !r.hasTemp {
			continue
		}
		v := r.temp
		if v == 0 {
			v = 1
		}
		if seen && v != t {
			return 0, &jobs.DataError{Pos: a.Pos("data"), Column: "temperature",
				Msg:  fmt.Sprintf("train: data rows have different temperatures (%g and %g at row %d)", t, v, i),
				Hint: "train on rollouts of one temperature, or pass temperature := ..."}
		}
		t, seen = v, true
	}
	return t, nil
}

// batchEntropy is actor/entropy as verl reports it: the entropies of the
// whole batch aggregated with loss_agg (loss.Aggregate, whole-batch
// denominators). verl measures them under the policy before the update (its
// old_log_prob pass); here they come from each row's forward in epoch 0,
// which is that policy when an epoch is one minibatch (the default); with
// several minibatches, rows of later minibatches are measured after the
// earlier updates of the epoch (no extra forward pass is run for a metric).
func batchEntropy(rows []trainRow, cfg loss.Config) (float64, error) {
	idx := make([]int, len(rows))
	var h []float32
	for i, r := range rows {
		idx[i] = i
		h = append(h, r.ent...)
	}
	return loss.Aggregate(h, completionOffsets(rows, idx), nil, cfg.Agg, cfg.NormLen)
}

// refLogps fills every row's ref with log π_ref of its completion tokens
// at temperature temp.
func refLogps(ref *trainer.Model, rows []trainRow, temp float64, micro int) error {
	ref.Recompute = true // forward only: one layer's activations, the same bits, no extra work
	for lo := 0; lo < len(rows); lo += micro {
		hi := min(lo+micro, len(rows))
		b, start := padBatch(hi-lo, func(i int) ([]int32, int) { return rows[lo+i].tokens, rows[lo+i].start })
		logp, _, err := ref.ForwardLogp(b, trainer.NextTokenTargets(b, start), float32(temp), false)
		if err != nil {
			return errf("train: reference forward: %w", err)
		}
		for i := range hi - lo {
			r := &rows[lo+i]
			r.ref = make([]float32, r.completion())
			for j := range r.ref {
				r.ref[j] = logp[i*b.T+r.start+r.at(j)-1]
			}
		}
	}
	return nil
}

// completionOffsets is the ragged layout of the completions of rows idx.
func completionOffsets(rows []trainRow, idx []int) []int {
	off := make([]int, len(idx)+1)
	for i, r := range idx {
		off[i+1] = off[i] + rows[r].completion()
	}
	return off
}

func advs(rows []trainRow, idx []int) []float32 {
	out := make([]float32, len(idx))
	for i, r := range idx {
		out[i] = float32(rows[r].adv)
	}
	return out
}

func resize(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// rowMetrics are the data metrics: critic/score/* (rows with a reward),
// critic/advantages/*, response_length/* (clip_ratio = fraction of rows
// with finish_reason 'length', or, without that column, with
// max_new_tokens or more tokens), train/sequences and train/tokens.
func rowMetrics(rows []trainRow, maxNew int) map[string]float64 {
	var scores, adv, length []float64
	clipped := 0
	toks := 0
	for _, r := range rows {
		if r.hasR {
			scores = append(scores, r.reward)
		}
		adv = append(adv, r.adv)
		n := r.completion()
		length = append(length, float64(n))
		toks += n
		switch {
		case r.finished != "":
			if r.finished == trainer.FinishLength {
				clipped++
			}
		case maxNew > 0 && n >= maxNew:
			clipped++
		}
	}
	m := map[string]float64{}
	put := func(prefix string, xs []float64) {
		mean, hi, lo := stats3(xs)
		m[prefix+"/mean"], m[prefix+"/max"], m[prefix+"/min"] = mean, hi, lo
	}
	if len(scores) > 0 {
		put("critic/score", scores)
	}
	put("critic/advantages", adv)
	put("response_length", length)
	m["response_length/clip_ratio"] = float64(clipped) / float64(len(rows))
	m["train/sequences"] = float64(len(rows))
	m["train/tokens"] = float64(toks)
	return m
}
