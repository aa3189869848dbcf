// Package loss computes rljob's RL objective (docs/RL.md, "Policy
// loss") and its gradient with respect to the per-token quantities the model
// produces. It knows nothing about the model: the trainer runs the forward
// pass, hands over per-token log-probabilities (and entropies), and
// backpropagates the per-token gradients returned here.
//
// # Layout
//
// A Batch is flat and ragged: N sequences (completions) with T tokens in
// all; sequence i owns tokens [Offsets[i], Offsets[i+1]). Per-token slices
// have length T, per-sequence slices length N. Only completion tokens belong
// in a Batch (no prompt, no padding); Mask drops further tokens (for
// instance a truncated tail) from every sum, mean and gradient.
//
// # Objective
//
// Per token t of sequence i, with A = Adv[i] broadcast over the sequence:
//
//	log_ρ = clamp(logπ_θ − logπ_old, −20, 20);  ρ = exp(log_ρ)
//	L1 = −A·ρ
//	L2 = −A·clip(ρ, 1 − ClipLow, 1 + ClipHigh)
//	Lc = max(L1, L2)
//	ℓ  = min(Lc, −A·ClipC) if ClipC > 0 and A < 0, else Lc   (dual clip)
//	ℓ ← w·ℓ,  w = min(exp(logπ_old − logπ_behav), TISCap)   only with BehavLogP (TIS)
//
// The last line is truncated importance sampling (TIS; verl
// compute_policy_loss_vanilla with tis_imp_ratio_cap, TRL
// vllm_importance_sampling_cap): when OldLogP is a recomputed proximal
// policy (the logprobs stage) and BehavLogP the log-probabilities of the
// policy that actually sampled the tokens (an external engine, a stale
// replay row), the PPO term of each token is weighted by the behaviour
// importance ratio, truncated above at TISCap. w depends on no parameter
// (both inputs are data), so ∂(w·ℓ)/∂logπ_θ = w·∂ℓ/∂logπ_θ; it multiplies
// the policy-gradient term only, not the entropy or KL terms, as in verl
// and TRL. Without BehavLogP the code path is the one without the weight.
//
// and the minibatch loss is
//
//	loss = Scale · ( agg(ℓ) − EntropyCoef·agg(H) + KLCoef·agg(KL) )
//
// with one aggregation agg(x) = Σ_t w_t·x_t for all three terms (weights in
// Weights). This is verl's compute_policy_loss_vanilla + agg_loss +
// dp_actor.update_policy, with docs/RL.md's pinned choices (see Agg for the one
// place rljob departs from current verl).
//
// # Gradients at kinks
//
// The functions above are piecewise smooth; at a kink rljob returns the
// subgradient PyTorch's autograd returns for verl's code, so the two
// frameworks step identically:
//
//   - clamp(x, lo, hi) passes the gradient for lo ≤ x ≤ hi, both ends
//     included, and 0 outside (torch clamp_backward). So the gradient
//     through log_ρ is 0 when |logπ_θ − logπ_old| > 20, and the gradient
//     through clip(ρ) is 0 when ρ is outside [1−ClipLow, 1+ClipHigh].
//   - max(a, b) and min(a, b) send the whole gradient to the selected
//     argument and split it ½/½ on an exact tie (torch.maximum/minimum
//     backward). Inside the clip range L1 == L2 exactly, so both halves
//     carry −A·ρ and the gradient is the full −A·ρ; on the range boundary
//     the same holds because the clamp passes its gradient there. (With
//     A ≠ 0, L1 and L2 tie only where their gradients agree, so for this
//     max the tie convention never changes the result.) Where the clipped
//     branch is selected (L2 > L1, ρ outside the range) the gradient is 0.
//     A dual-clip tie (Lc == −A·ClipC) does matter: it halves Lc's
//     gradient; when the dual clip is selected the gradient is 0.
//
// Hence, away from the boundaries:
//
//	∂ℓ/∂logπ_θ = −A·ρ  when the ratio is "active" (|logπ_θ − logπ_old| ≤ 20,
//	                   L1 ≥ L2 and, for the dual clip, Lc < −A·ClipC), else 0.
//
// All arithmetic is float64 (inputs and gradients are float32, the model's
// type). verl computes in the model's dtype, so values agree to float32
// rounding; a token within rounding of a kink may fall on the other side of
// it in the two frameworks.
//
// # Minibatches and gradient accumulation
//
// Compute aggregates over the Batch it is given, like verl's agg_loss on one
// micro-batch. How micro-batches combine into one optimizer step is the Norm
// argument:
//
//   - Norm{} (zero value): this Batch is the whole step.
//   - MicroBatchNorm(n, total): verl's classic dp_actor rule — each
//     micro-batch is aggregated on its own and its loss scaled by its share
//     of sequences, n/total (verl: loss = policy_loss ·
//     micro_bsz/ppo_mini_batch_size). Summed gradients then equal the
//     full-batch gradient only when every micro-batch has the same token
//     count (token-mean) or non-empty sequence count (seq-mean-token-mean,
//     seq-mean-token-sum); seq-mean-token-sum-norm, already a plain sum
//     over tokens, comes out multiplied by the share.
//   - GlobalNorm(batches...): the denominators are the totals over all the
//     micro-batches of the step (global token count for token-mean, global
//     non-empty sequence count for the seq-mean modes), as verl's newer
//     agg_loss(batch_num_tokens, global_batch_size). The summed losses and
//     gradients of the k micro-batches then equal the single full-batch loss
//     and gradient exactly (up to rounding), for every aggregation mode. This
//     is what rljob's trainer should use.
//
// Stats from the micro-batches of a step combine with Stats.Add.
package loss

import (
	"fmt"
	"math"
)

// Agg is the loss aggregation mode (docs/RL.md "loss_agg"). With m the mask,
// n_i = Σ_{t∈i} m_t the masked length of sequence i, N the number of
// sequences with n_i > 0 and L = Config.NormLen, agg(x) = Σ_t w_t·x_t with
//
//	token-mean               w_t = m_t / Σ m            verl default; TRL dapo/bnpo
//	seq-mean-token-mean      w_t = m_t / (n_i · N)      original GRPO; TRL grpo
//	seq-mean-token-sum       w_t = m_t / N              verl
//	seq-mean-token-sum-norm  w_t = m_t / L              Dr. GRPO (docs/RL.md: Σ ℓ·m / L)
//
// Sequences with no masked token are left out of N, as verl's agg_loss does.
// seq-mean-token-sum-norm follows docs/RL.md, Σ ℓ·m / L, and not current verl,
// which also divides by the number of sequences (Σ ℓ·m / (N·L), the form TRL
// dr_grpo uses); the two differ by the constant N, i.e. by the learning rate.
// An empty denominator (no masked token) gives weight 0, not NaN.
type Agg string

// The aggregation modes, spelled as in verl's loss_agg_mode.
const (
	TokenMean           Agg = "token-mean"
	SeqMeanTokenMean    Agg = "seq-mean-token-mean"
	SeqMeanTokenSum     Agg = "seq-mean-token-sum"
	SeqMeanTokenSumNorm Agg = "seq-mean-token-sum-norm"
)

// KLType is the estimator of KL(π_θ ‖ π_ref) per token, with d = logπ_θ − logπ_ref:
//
//	k1: d                                                verl "kl"
//	k2: ½·d²                                             verl "mse"
//	k3: x = clamp(−d, −20, 20); clamp(eˣ − x − 1, −10, 10)  verl "low_var_kl"
//
// and gradients ∂/∂logπ_θ of 1, d and (1 − eˣ) respectively; k3's gradient is
// 0 where either clamp is active (torch clamp_backward; since eˣ − x − 1 ≥ 0
// and reaches 10 at x ≈ −11 and x ≈ 2.528, that is d ≥ ~11 or d ≤ ~−2.528).
type KLType string

// The KL estimators.
const (
	K1 KLType = "k1"
	K2 KLType = "k2"
	K3 KLType = "k3"
)

// ParseKLType accepts rljob's names (k1, k2, k3) and verl's (kl, mse,
// low_var_kl).
func ParseKLType(s string) (KLType, error) {
	switch s {
	case "k1", "kl":
		return K1, nil
	case "k2", "mse":
		return K2, nil
	case "k3", "low_var_kl":
		return K3, nil
	}
	return "", fmt.Errorf("loss: kl_type %q: want k1, k2 or k3", s)
}

// ParseAgg checks a loss_agg value.
func ParseAgg(s string) (Agg, error) {
	switch a := Agg(s); a {
	case TokenMean, SeqMeanTokenMean, SeqMeanTokenSum, SeqMeanTokenSumNorm:
		return a, nil
	}
	return "", fmt.Errorf("loss: loss_agg %q: want token-mean, seq-mean-token-mean, seq-mean-token-sum or seq-mean-token-sum-norm", s)
}

// Config holds the train stage's loss arguments (names as in docs/RL.md).
type Config struct {
	ClipLow  float64 // ε_low: ρ is clipped below at 1 − ClipLow; in [0, 1)
	ClipHigh float64 // ε_high: ρ is clipped above at 1 + ClipHigh; ≥ 0 (DAPO clip-higher: 0.28)
	ClipC    float64 // dual-clip constant c > 1; 0 turns the dual clip off (verl uses 3)

	Agg     Agg // aggregation of pg, entropy and KL terms
	NormLen int // L for seq-mean-token-sum-norm: the trainer passes max_new_tokens unless the user gives one

	KLCoef float64 // coefficient of agg(KL); needs Batch.RefLogP when ≠ 0
	KLType KLType  // estimator; ignored when there is no reference

	EntropyCoef float64 // coefficient of the entropy bonus −EntropyCoef·agg(H); needs Batch.Entropy when ≠ 0

	TISCap float64 // C of the TIS weight min(exp(logπ_old − logπ_behav), C); > 0 when the batch has BehavLogP, else unused (train: tis_cap, default 2)
}

// DefaultConfig returns docs/RL.md's defaults: clip 0.2/0.2, no dual clip,
// token-mean, no KL (k3 when enabled, as verl's default kl_loss_type), no
// entropy bonus.
func DefaultConfig() Config {
	return Config{ClipLow: 0.2, ClipHigh: 0.2, Agg: TokenMean, KLType: K3, TISCap: 2}
}

// Validate reports the first bad field, named as the train stage argument.
func (c *Config) Validate() error {
	finite := func(name string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("loss: %s = %v: must be finite", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"clip_low", c.ClipLow}, {"clip_high", c.ClipHigh}, {"clip_c", c.ClipC}, {"kl_coef", c.KLCoef}, {"entropy_coef", c.EntropyCoef}, {"tis_cap", c.TISCap}} {
		if err := finite(f.name, f.v); err != nil {
			return err
		}
	}
	if c.ClipLow < 0 || c.ClipLow >= 1 {
		return fmt.Errorf("loss: clip_low = %v: must be in [0, 1)", c.ClipLow)
	}
	if c.ClipHigh < 0 {
		return fmt.Errorf("loss: clip_high = %v: must be ≥ 0", c.ClipHigh)
	}
	if c.TISCap < 0 {
		return fmt.Errorf("loss: tis_cap = %v: must be > 0", c.TISCap)
	}
	if c.ClipC != 0 && c.ClipC <= 1 {
		// verl asserts clip_ratio_c > 1: the dual clip bounds −A·ρ for A < 0
		// from above by −A·c, which must lie above the ordinary clip.
		return fmt.Errorf("loss: clip_c = %v: must be > 1, or 0 to turn the dual clip off", c.ClipC)
	}
	if _, err := ParseAgg(string(c.Agg)); err != nil {
		return err
	}
	if c.Agg == SeqMeanTokenSumNorm && c.NormLen <= 0 {
		return fmt.Errorf("loss: loss_agg %s needs a positive normalising length L (max_new_tokens), got %d", c.Agg, c.NormLen)
	}
	if c.KLCoef != 0 {
		if _, err := ParseKLType(string(c.KLType)); err != nil {
			return err
		}
	}
	return nil
}

// Batch is one minibatch in the flat ragged layout (see the package doc).
// N = len(Offsets) − 1 sequences, T = Offsets[N] tokens.
type Batch struct {
	Offsets []int     // (N+1) nondecreasing, Offsets[0] = 0: sequence i is tokens [Offsets[i], Offsets[i+1])
	Adv     []float32 // (N) advantage A of each sequence, broadcast over its tokens
	LogP    []float32 // (T) logπ_θ of each completion token under the current policy, at the train temperature
	OldLogP []float32 // (T) logπ_old of the PPO ratio: the behaviour log-probs (rollouts.logprobs), or a recomputed proximal policy when BehavLogP is set
	// BehavLogP (T) is the log-probs of the policy that sampled the tokens,
	// when it differs from OldLogP's (train's old_logprobs column), or nil:
	// no TIS weight (see the package doc).
	BehavLogP []float32
	RefLogP   []float32 // (T) logπ_ref, or nil: no KL term and no kl_loss metric
	Entropy   []float32 // (T) entropy H of the full next-token distribution, or nil: no bonus, no entropy metric
	Mask      []float32 // (T) 1 = in the loss, 0 = ignored; nil = all ones
}

// NumSeqs returns N.
func (b *Batch) NumSeqs() int { return len(b.Offsets) - 1 }

// NumTokens returns T.
func (b *Batch) NumTokens() int {
	if len(b.Offsets) == 0 {
		return 0
	}
	return b.Offsets[len(b.Offsets)-1]
}

// mask returns m_t.
func (b *Batch) mask(t int) float64 {
	if b.Mask == nil {
		return 1
	}
	return float64(b.Mask[t])
}

// check validates the layout against cfg.
func (b *Batch) check(cfg *Config) error {
	if err := checkLayout(b.Offsets, b.Mask); err != nil {
		return err
	}
	n, T := b.NumSeqs(), b.NumTokens()
	if len(b.Adv) != n {
		return fmt.Errorf("loss: batch: %d advantages for %d sequences", len(b.Adv), n)
	}
	for _, f := range []struct {
		name     string
		s        []float32
		optional bool
	}{{"logp", b.LogP, false}, {"old_logp", b.OldLogP, false}, {"behav_logp", b.BehavLogP, true}, {"ref_logp", b.RefLogP, true}, {"entropy", b.Entropy, true}} {
		if len(f.s) != T && !(f.optional && f.s == nil) {
			return fmt.Errorf("loss: batch: %s has %d values for %d tokens", f.name, len(f.s), T)
		}
	}
	if b.RefLogP != nil {
		if _, err := ParseKLType(string(cfg.KLType)); err != nil {
			return err
		}
	}
	if cfg.KLCoef != 0 && b.RefLogP == nil {
		return fmt.Errorf("loss: kl_coef = %v but the batch has no reference log-probabilities", cfg.KLCoef)
	}
	if cfg.EntropyCoef != 0 && b.Entropy == nil {
		return fmt.Errorf("loss: entropy_coef = %v but the batch has no entropies", cfg.EntropyCoef)
	}
	if b.BehavLogP != nil && !(cfg.TISCap > 0) {
		return fmt.Errorf("loss: the batch has behaviour log-probabilities but tis_cap = %v: want a cap > 0 (verl, TRL: 2)", cfg.TISCap)
	}
	return nil
}

// checkLayout validates offsets and an optional 0/1 mask.
func checkLayout(offsets []int, mask []float32) error {
	if len(offsets) == 0 {
		return fmt.Errorf("loss: batch: offsets is empty, want N+1 entries starting at 0")
	}
	if offsets[0] != 0 {
		return fmt.Errorf("loss: batch: offsets[0] = %d, want 0", offsets[0])
	}
	for i := 1; i < len(offsets); i++ {
		if offsets[i] < offsets[i-1] {
			return fmt.Errorf("loss: batch: offsets decrease at sequence %d (%d < %d)", i-1, offsets[i], offsets[i-1])
		}
	}
	T := offsets[len(offsets)-1]
	if mask != nil {
		if len(mask) != T {
			return fmt.Errorf("loss: batch: mask has %d values for %d tokens", len(mask), T)
		}
		for t, m := range mask {
			if m != 0 && m != 1 {
				return fmt.Errorf("loss: batch: mask[%d] = %v, want 0 or 1", t, m)
			}
		}
	}
	return nil
}

// Norm fixes how a minibatch's aggregate relates to the optimizer step it
// is part of (see the package doc, "Minibatches and gradient accumulation").
// The zero Norm means "this batch is the whole step".
type Norm struct {
	Tokens int     // token-mean denominator; 0 = Σ m of this batch
	Seqs   int     // seq-mean-* denominator; 0 = non-empty sequences of this batch
	Scale  float64 // multiplies the loss, its gradients and the aggregated Stats; 0 = 1
}

// MicroBatchNorm is verl's classic gradient accumulation: the micro-batch is
// aggregated on its own and scaled by its share seqs/totalSeqs of the
// mini-batch's sequences (dp_actor: policy_loss · micro_bsz/ppo_mini_batch_size;
// with equal micro-batches, 1/gradient_accumulation).
func MicroBatchNorm(seqs, totalSeqs int) Norm {
	if totalSeqs <= 0 {
		return Norm{}
	}
	return Norm{Scale: float64(seqs) / float64(totalSeqs)}
}

// GlobalNorm returns the Norm under which the micro-batches' losses and
// gradients add up to those of the one batch holding all their sequences:
// Tokens = Σ m over all of them, Seqs = their non-empty sequences, Scale 1
// (verl's agg_loss with batch_num_tokens and global_batch_size). A batch with
// a bad layout is an error.
func GlobalNorm(batches ...*Batch) (Norm, error) {
	var n Norm
	for k, b := range batches {
		if err := checkLayout(b.Offsets, b.Mask); err != nil {
			return Norm{}, fmt.Errorf("loss: global norm: batch %d: %w", k, err)
		}
		tok, seqs := counts(b.Offsets, b.Mask)
		n.Tokens += tok
		n.Seqs += seqs
	}
	return n, nil
}

// counts returns Σ m and the number of sequences with at least one masked token.
func counts(offsets []int, mask []float32) (tokens, seqs int) {
	for i := 0; i+1 < len(offsets); i++ {
		n := 0
		for t := offsets[i]; t < offsets[i+1]; t++ {
			if mask == nil || mask[t] != 0 {
				n++
			}
		}
		tokens += n
		if n > 0 {
			seqs++
		}
	}
	return tokens, seqs
}

// Weights writes w (T) with the aggregation weight of every token, Scale
// included (w_t = Scale·m_t/... as in Agg): agg(x) = Σ_t w[t]·x[t]. Compute
// uses it; the trainer can use it to aggregate other per-token losses (SFT
// cross-entropy) the same way. normLen is L for seq-mean-token-sum-norm.
func Weights(w []float64, offsets []int, mask []float32, agg Agg, normLen int, n Norm) error {
	if err := checkLayout(offsets, mask); err != nil {
		return err
	}
	T := offsets[len(offsets)-1]
	if len(w) != T {
		return fmt.Errorf("loss: weights: len(w) = %d for %d tokens", len(w), T)
	}
	scale := n.Scale
	if scale == 0 {
		scale = 1
	}
	tokens, seqs := counts(offsets, mask)
	if n.Tokens != 0 {
		tokens = n.Tokens
	}
	if n.Seqs != 0 {
		seqs = n.Seqs
	}
	m := func(t int) float64 {
		if mask == nil {
			return 1
		}
		return float64(mask[t])
	}
	switch agg {
	case TokenMean:
		c := 0.0
		if tokens > 0 {
			c = scale / float64(tokens)
		}
		for t := range w {
			w[t] = c * m(t)
		}
	case SeqMeanTokenMean:
		for i := 0; i+1 < len(offsets); i++ {
			ni := 0.0
			for t := offsets[i]; t < offsets[i+1]; t++ {
				ni += m(t)
			}
			c := 0.0
			if ni > 0 && seqs > 0 {
				c = scale / (ni * float64(seqs))
			}
			for t := offsets[i]; t < offsets[i+1]; t++ {
				w[t] = c * m(t)
			}
		}
	case SeqMeanTokenSum:
		c := 0.0
		if seqs > 0 {
			c = scale / float64(seqs)
		}
		for t := range w {
			w[t] = c * m(t)
		}
	case SeqMeanTokenSumNorm:
		if normLen <= 0 {
			return fmt.Errorf("loss: weights: %s needs a positive length L, got %d", agg, normLen)
		}
		c := scale / float64(normLen)
		for t := range w {
			w[t] = c * m(t)
		}
	default:
		_, err := ParseAgg(string(agg))
		return err
	}
	return nil
}

// Aggregate returns agg(x) = Σ_t w_t·x_t with the weights of Weights for
// the batch layout (offsets, mask) alone (Norm{}): the value verl's agg_loss
// gives a per-token metric, e.g. actor/entropy.
func Aggregate(x []float32, offsets []int, mask []float32, agg Agg, normLen int) (float64, error) {
	if err := checkLayout(offsets, mask); err != nil {
		return 0, err
	}
	if len(x) != offsets[len(offsets)-1] {
		return 0, fmt.Errorf("loss: aggregate: %d values for %d tokens", len(x), offsets[len(offsets)-1])
	}
	w := make([]float64, len(x))
	if err := Weights(w, offsets, mask, agg, normLen, Norm{}); err != nil {
		return 0, err
	}
	var s float64
	for t, v := range x {
		if w[t] != 0 {
			s += w[t] * float64(v)
		}
	}
	return s, nil
}

// Grads receives the gradients Compute writes (=, not +=), for every token
// of the batch (0 on masked-out tokens). Either slice may be nil to skip it;
// otherwise its length is T.
type Grads struct {
	LogP    []float32 // (T) ∂loss/∂logπ_θ: backpropagate into the logits of the token's position
	Entropy []float32 // (T) ∂loss/∂H = −Scale·EntropyCoef·w_t
}

// Stats are the metrics of one Compute. Sums and counts, so that the Stats
// of the micro-batches of a step (or of a whole update) combine exactly
// with Add; Metrics turns them into docs/RL.md's names.
type Stats struct {
	Loss        float64 // the objective whose gradient Compute wrote: PGLoss − EntropyCoef·EntropyAgg + KLCoef·KLLoss
	PGLoss      float64 // Scale·agg(ℓ)
	EntropyAgg  float64 // Scale·agg(H); 0 without entropies
	KLLoss      float64 // Scale·agg(KL); 0 without a reference
	Tokens      int     // Σ m
	Seqs        int     // sequences with a masked token
	Clipped     int     // masked tokens with L2 > L1 (the clipped branch is selected), verl pg_clipfrac
	DualClipped int     // masked tokens with A < 0 and Lc > −A·ClipC, verl pg_clipfrac_lower
	NegLogRatio float64 // Σ −log_ρ·m with the clamped log_ρ, verl ppo_kl
	EntropySum  float64 // Σ H·m
	MaxAbsLogR  float64 // max |logπ_θ − logπ_old| over masked tokens (unclamped): 0 on the first on-policy minibatch
	TISWeight   float64 // Σ w·m, the TIS weights (with BehavLogP)
	TISCapped   int     // masked tokens with exp(logπ_old − logπ_behav) > TISCap: truncated
	BehavLogR   float64 // Σ (logπ_behav − logπ_old)·m (verl mismatch_kl's sum)
	HasEntropy  bool
	HasKL       bool
	HasTIS      bool
}

// Add accumulates o into s: sums add, MaxAbsLogR takes the max.
func (s *Stats) Add(o Stats) {
	s.Loss += o.Loss
	s.PGLoss += o.PGLoss
	s.EntropyAgg += o.EntropyAgg
	s.KLLoss += o.KLLoss
	s.Tokens += o.Tokens
	s.Seqs += o.Seqs
	s.Clipped += o.Clipped
	s.DualClipped += o.DualClipped
	s.NegLogRatio += o.NegLogRatio
	s.EntropySum += o.EntropySum
	s.MaxAbsLogR = math.Max(s.MaxAbsLogR, o.MaxAbsLogR)
	s.TISWeight += o.TISWeight
	s.TISCapped += o.TISCapped
	s.BehavLogR += o.BehavLogR
	s.HasEntropy = s.HasEntropy || o.HasEntropy
	s.HasKL = s.HasKL || o.HasKL
	s.HasTIS = s.HasTIS || o.HasTIS
}

// Metrics returns the metrics named in docs/RL.md:
//
//	actor/pg_loss           PGLoss (aggregated with the configured mode)
//	actor/pg_clipfrac       Clipped / Tokens
//	actor/pg_clipfrac_lower DualClipped / Tokens
//	actor/ppo_kl            NegLogRatio / Tokens  (mean of −log_ρ)
//	actor/entropy           EntropySum / Tokens   (masked token mean, whatever the mode), with entropies only;
//	                        the train stage reports verl's value instead: Aggregate of the entropies over the batch
//	actor/kl_loss           KLLoss (aggregated with the configured mode), with a reference only
//	actor/tis_weight_mean   TISWeight / Tokens    (mean TIS weight w as applied), with BehavLogP only
//	actor/tis_clipfrac      TISCapped / Tokens    (tokens whose weight was truncated at TISCap), with BehavLogP only
//	actor/tis_behav_kl      BehavLogR / Tokens    (mean logπ_behav − logπ_old, verl mismatch/mismatch_kl), with BehavLogP only
//
// The token means are over all tokens added together, i.e. the full-batch
// masked mean (verl averages per-micro-batch means; the two agree when the
// micro-batches hold equal token counts).
func (s Stats) Metrics() map[string]float64 {
	frac := func(x float64) float64 {
		if s.Tokens == 0 {
			return 0
		}
		return x / float64(s.Tokens)
	}
	m := map[string]float64{
		"actor/pg_loss":           s.PGLoss,
		"actor/pg_clipfrac":       frac(float64(s.Clipped)),
		"actor/pg_clipfrac_lower": frac(float64(s.DualClipped)),
		"actor/ppo_kl":            frac(s.NegLogRatio),
	}
	if s.HasEntropy {
		m["actor/entropy"] = frac(s.EntropySum)
	}
	if s.HasKL {
		m["actor/kl_loss"] = s.KLLoss
	}
	if s.HasTIS {
		m["actor/tis_weight_mean"] = frac(s.TISWeight)
		m["actor/tis_clipfrac"] = frac(float64(s.TISCapped))
		m["actor/tis_behav_kl"] = frac(s.BehavLogR)
	}
	return m
}

// Compute evaluates the loss of the package doc on b and writes its
// gradients into g (see Grads; nil slices are skipped, so Compute with
// Grads{} is the forward pass alone). It returns the loss and metrics.
//
// The caller backpropagates g.LogP[t] into the logits at token t's position
// (∂logπ/∂z = onehot − softmax(z)/τ at temperature τ) and g.Entropy[t]
// likewise through H. An unmasked non-finite input is an error (a NaN would
// otherwise spread silently through the update); masked-out tokens are never
// read, so padding may hold anything.
func Compute(g Grads, b *Batch, cfg *Config, n Norm) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	if err := b.check(cfg); err != nil {
		return Stats{}, err
	}
	T := b.NumTokens()
	if g.LogP != nil && len(g.LogP) != T {
		return Stats{}, fmt.Errorf("loss: grads: len(LogP) = %d for %d tokens", len(g.LogP), T)
	}
	if g.Entropy != nil && len(g.Entropy) != T {
		return Stats{}, fmt.Errorf("loss: grads: len(Entropy) = %d for %d tokens", len(g.Entropy), T)
	}
	w := make([]float64, T)
	if err := Weights(w, b.Offsets, b.Mask, cfg.Agg, cfg.NormLen, n); err != nil {
		return Stats{}, err
	}

	klType, _ := ParseKLType(string(cfg.KLType)) // checked by b.check when there is a reference

	st := Stats{HasEntropy: b.Entropy != nil, HasKL: b.RefLogP != nil, HasTIS: b.BehavLogP != nil}
	st.Tokens, st.Seqs = counts(b.Offsets, b.Mask)
	for i := 0; i < b.NumSeqs(); i++ {
		A := float64(b.Adv[i])
		for t := b.Offsets[i]; t < b.Offsets[i+1]; t++ {
			var dLogP, dH float64
			if b.mask(t) != 0 {
				if err := finiteInputs(b, i, t); err != nil {
					return Stats{}, err
				}
				logp, old := float64(b.LogP[t]), float64(b.OldLogP[t])
				tok := policyToken(logp, old, A, cfg)
				if b.BehavLogP != nil {
					behav := float64(b.BehavLogP[t])
					is, capped := tisWeight(old, behav, cfg.TISCap)
					tok.loss *= is
					tok.dLogP *= is
					st.TISWeight += is
					if capped {
						st.TISCapped++
					}
					st.BehavLogR += behav - old
				}
				st.PGLoss += w[t] * tok.loss
				dLogP = w[t] * tok.dLogP
				if tok.clipped {
					st.Clipped++
				}
				if tok.dualClipped {
					st.DualClipped++
				}
				st.NegLogRatio -= tok.logRatio
				st.MaxAbsLogR = math.Max(st.MaxAbsLogR, math.Abs(logp-old))
				if b.RefLogP != nil {
					kl, dkl := klToken(klType, logp, float64(b.RefLogP[t]))
					st.KLLoss += w[t] * kl
					dLogP += cfg.KLCoef * w[t] * dkl
				}
				if b.Entropy != nil {
					h := float64(b.Entropy[t])
					st.EntropyAgg += w[t] * h
					st.EntropySum += h
					dH = -cfg.EntropyCoef * w[t]
				}
			}
			if g.LogP != nil {
				g.LogP[t] = float32(dLogP)
			}
			if g.Entropy != nil {
				g.Entropy[t] = float32(dH)
			}
		}
	}
	st.Loss = st.PGLoss - cfg.EntropyCoef*st.EntropyAgg + cfg.KLCoef*st.KLLoss
	return st, nil
}

// finiteInputs reports a NaN or Inf among the inputs of unmasked token t of sequence i.
func finiteInputs(b *Batch, i, t int) error {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }
	switch {
	case bad(b.Adv[i]):
		return fmt.Errorf("loss: sequence %d: advantage is %v", i, b.Adv[i])
	case bad(b.LogP[t]):
		return fmt.Errorf("loss: token %d (sequence %d): logp is %v", t, i, b.LogP[t])
	case bad(b.OldLogP[t]):
		return fmt.Errorf("loss: token %d (sequence %d): old_logp is %v", t, i, b.OldLogP[t])
	case b.BehavLogP != nil && bad(b.BehavLogP[t]):
		return fmt.Errorf("loss: token %d (sequence %d): behav_logp is %v", t, i, b.BehavLogP[t])
	case b.RefLogP != nil && bad(b.RefLogP[t]):
		return fmt.Errorf("loss: token %d (sequence %d): ref_logp is %v", t, i, b.RefLogP[t])
	case b.Entropy != nil && bad(b.Entropy[t]):
		return fmt.Errorf("loss: token %d (sequence %d): entropy is %v", t, i, b.Entropy[t])
	}
	return nil
}
