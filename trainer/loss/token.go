package loss

import "math"

// logRatioClamp bounds log_ρ before exp (verl compute_policy_loss_vanilla:
// "Clamp negative_approx_kl for stability"); e^20 ≈ 4.85e8.
const logRatioClamp = 20

// k3 clamps (verl kl_penalty "low_var_kl").
const (
	k3LogClamp = 20 // x = clamp(logπ_ref − logπ_θ, −20, 20)
	k3Clamp    = 10 // k3 = clamp(eˣ − x − 1, −10, 10)
)

// tokenPG is the policy-gradient term of one token.
type tokenPG struct {
	loss        float64 // ℓ
	dLogP       float64 // ∂ℓ/∂logπ_θ
	logRatio    float64 // log_ρ after the ±20 clamp
	clipped     bool    // L2 > L1: the clipped branch is selected (verl pg_clipfrac)
	dualClipped bool    // A < 0 and Lc > −A·c (verl pg_clipfrac_lower; only with the dual clip on)
}

// policyToken evaluates, for one token with advantage A (verl
// compute_policy_loss_vanilla, with torch's subgradients; see the package doc):
//
//	log_ρ = clamp(logp − old, −20, 20)        ∂log_ρ/∂logp = [−20 ≤ logp − old ≤ 20]
//	ρ     = exp(log_ρ)                         ∂ρ/∂log_ρ   = ρ
//	L1    = −A·ρ                               ∂L1/∂ρ      = −A
//	L2    = −A·clip(ρ, 1−ε_low, 1+ε_high)     ∂L2/∂ρ      = −A·[1−ε_low ≤ ρ ≤ 1+ε_high]
//	Lc    = max(L1, L2)                        ∂Lc/∂ρ      = a1·∂L1/∂ρ + a2·∂L2/∂ρ
//	ℓ     = min(Lc, L3), L3 = −A·c, if c > 0 and A < 0, else Lc
//	                                           ∂ℓ/∂Lc      = b  (∂L3/∂ρ = 0)
//
// with (a1, a2) = (1, 0) if L1 > L2, (0, 1) if L1 < L2, (½, ½) on a tie, and
// b = 1 if Lc < L3, 0 if Lc > L3, ½ on a tie (torch.maximum/minimum).
func policyToken(logp, old, A float64, cfg *Config) tokenPG {
	d := logp - old
	logRatio, dLogRatio := clamp(d, -logRatioClamp, logRatioClamp)
	rho := math.Exp(logRatio)

	l1 := -A * rho
	cr, dcr := clamp(rho, 1-cfg.ClipLow, 1+cfg.ClipHigh)
	l2 := -A * cr
	lc, a1, a2 := maximum(l1, l2)
	dLc := a1*(-A) + a2*(-A)*dcr // ∂Lc/∂ρ

	out := tokenPG{loss: lc, logRatio: logRatio, clipped: l2 > l1}
	dl := dLc // ∂ℓ/∂ρ
	if cfg.ClipC > 0 && A < 0 {
		l3 := -A * cfg.ClipC
		l, bc, _ := minimum(lc, l3)
		out.loss = l
		dl = bc * dLc
		out.dualClipped = lc > l3
	}
	out.dLogP = dl * rho * dLogRatio
	return out
}

// tisWeight is the truncated importance-sampling weight of one token (verl
// compute_policy_loss_vanilla, tis_imp_ratio_cap; TRL
// vllm_importance_sampling_cap):
//
//	w = min(exp(old − behav), capW)
//
// and whether the cap was applied (exp(old − behav) > capW). No clamp of
// the exponent is needed: exp of a large float64 is +Inf and min(+Inf,
// capW) = capW, exp of a very negative one is 0. w is data to the
// optimizer: neither input depends on θ.
func tisWeight(old, behav, capW float64) (w float64, capped bool) {
	r := math.Exp(old - behav)
	if r > capW {
		return capW, true
	}
	return r, false
}

// klToken returns the KL estimate of one token and its derivative with
// respect to logp (see KLType), d = logp − ref.
func klToken(kind KLType, logp, ref float64) (v, dv float64) {
	d := logp - ref
	switch kind {
	case K1:
		return d, 1
	case K2:
		return 0.5 * d * d, d
	case K3:
		x, dx := clamp(-d, -k3LogClamp, k3LogClamp) // ∂x/∂logp = −dx
		ex := math.Exp(x)
		k, dk := clamp(ex-x-1, -k3Clamp, k3Clamp)
		return k, dk * (ex - 1) * (-dx)
	}
	panic("loss: unchecked KL type " + string(kind)) // Compute parses the type first
}

// clamp returns min(max(x, lo), hi) and torch's derivative: 1 for
// lo ≤ x ≤ hi (ends included), else 0.
func clamp(x, lo, hi float64) (float64, float64) {
	switch {
	case x < lo:
		return lo, 0
	case x > hi:
		return hi, 0
	}
	return x, 1
}

// maximum returns max(a, b) and the shares of the gradient that reach a and
// b: torch.maximum sends all of it to the larger and splits a tie ½/½.
func maximum(a, b float64) (v, da, db float64) {
	switch {
	case a > b:
		return a, 1, 0
	case a < b:
		return b, 0, 1
	}
	return a, 0.5, 0.5
}

// minimum is maximum's twin for torch.minimum (torch.min of two tensors).
func minimum(a, b float64) (v, da, db float64) {
	switch {
	case a < b:
		return a, 1, 0
	case a > b:
		return b, 0, 1
	}
	return a, 0.5, 0.5
}
