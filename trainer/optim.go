package trainer

import (
	"fmt"
	"math"

	"github.com/rljob/rljob/kernels"
)

// Schedule is the learning-rate schedule: linear warm-up from LR/Warmup to
// LR over the first Warmup updates, then either constant or a cosine decay
// to MinLR at update Total (and MinLR after it).
//
//	step < Warmup:           lr = LR · (step+1)/Warmup
//	"constant":              lr = LR
//	"cosine":                p = (step−Warmup)/(Total−Warmup) clamped to [0,1]
//	                         lr = MinLR + ½(LR − MinLR)(1 + cos(π p))
//
// step counts updates already made (0 for the first update).
type Schedule struct {
	Kind   string  `json:"kind"` // "constant" or "cosine"
	LR     float64 `json:"lr"`
	MinLR  float64 `json:"min_lr"`
	Warmup int     `json:"warmup_steps"`
	Total  int     `json:"total_steps"` // cosine only
}

// Validate checks the schedule's fields.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "constant", "cosine":
	default:
		return fmt.Errorf("trainer: schedule kind %q (want constant or cosine)", s.Kind)
	}
	if s.LR < 0 || s.MinLR < 0 || s.Warmup < 0 || s.Total < 0 {
		return fmt.Errorf("trainer: schedule %+v has a negative field", s)
	}
	if s.Kind == "cosine" && s.Total <= s.Warmup {
		return fmt.Errorf("trainer: cosine schedule needs total_steps %d > warmup_steps %d", s.Total, s.Warmup)
	}
	return nil
}

// At returns the learning rate of update number step (0-based).
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.LR * float64(step+1) / float64(s.Warmup)
	}
	if s.Kind != "cosine" {
		return s.LR
	}
	p := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	p = min(max(p, 0), 1)
	return s.MinLR + 0.5*(s.LR-s.MinLR)*(1+math.Cos(math.Pi*p))
}

// AdamW holds the optimizer's hyper-parameters and state. M and V are flat
// buffers laid out like the parameters (the same Tensor table), so they are
// saved under the parameters' names.
//
// Update, per element with g the (clipped) gradient, t = Step+1:
//
//	m = β1 m + (1−β1) g
//	v = β2 v + (1−β2) g²
//	p = p − lr·( m/(1−β1ᵗ) / (sqrt(v/(1−β2ᵗ)) + ε) + λ·p )   (λ only where Tensor.Decay)
//
// which is PyTorch's torch.optim.AdamW (decoupled decay, Loshchilov & Hutter 2019).
type AdamW struct {
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
	// MaxGradNorm clips the global L2 norm of the gradient to this value
	// before the update (scale = MaxGradNorm/norm when norm > MaxGradNorm);
	// 0 disables clipping.
	MaxGradNorm float64 `json:"max_grad_norm"`
	Step        int     `json:"step"` // updates made so far
	// M and V are the moments, one per trained parameter, in host memory.
	// After a step on a backend that keeps them (the CUDA backend) they
	// are stale until SyncMoments; they are written on the host only
	// before the first step (new or loaded moments).
	M, V []float32 `json:"-"`

	keeper Backend // the backend holding a copy of the moments (nil: none)
	stale  bool    // keeper's copy is newer than M, V
}

// keptBy records that be holds o's moments, newer than M and V (a
// backend's AdamWStep calls it when it keeps them).
func (o *AdamW) keptBy(be Backend) { o.keeper, o.stale = be, true }

// SyncMoments makes M and V current: it fetches the moments from the
// backend that keeps them when they are newer there. Whatever reads M or V
// on the host (a checkpoint) calls it first.
func (o *AdamW) SyncMoments() error {
	if o == nil || !o.stale {
		return nil
	}
	o.keeper.FetchMoments(o)
	if err := backendErr(o.keeper, "optimizer moments download"); err != nil {
		return err
	}
	o.stale = false
	return nil
}

// moveTo makes be the backend of o's next step: moments kept by another
// backend are fetched and dropped there.
func (o *AdamW) moveTo(be Backend) error {
	if o.keeper == nil || o.keeper == be {
		return nil
	}
	if err := o.SyncMoments(); err != nil {
		return err
	}
	o.keeper.DropMoments(o)
	o.keeper = nil
	return nil
}

// DefaultAdamW returns β = (0.9, 0.999), ε = 1e-8, weight decay 0.01,
// clipping at 1.0 (HF Trainer's defaults), with zeroed moments for n params.
func DefaultAdamW(n int) *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MaxGradNorm: 1.0,
		M: takeFloats(n), V: takeFloats(n)}
}

// Update applies one AdamW step with learning rate lr to params using grads
// (both following table). When MaxGradNorm > 0 and the global norm exceeds
// it, the gradient is scaled by MaxGradNorm/(norm+1e-6) inside the update
// (as torch.nn.utils.clip_grad_norm_; grads itself is not modified). It
// returns the norm before clipping. A non-finite norm is an error and
// leaves params and state untouched. It computes on the selected device's
// backend (UseDevice: the one the models made since compute with); a
// device failure is an error naming it.
func (o *AdamW) Update(table []Tensor, params, grads []float32, lr float64) (gradNorm float64, err error) {
	return o.update(selectedBackend(), table, params, grads, lr, false)
}

// update is Update on backend be; with zero it also sets grads to 0 as it
// goes (saving the separate pass of ZeroGrad before the next step).
func (o *AdamW) update(be Backend, table []Tensor, params, grads []float32, lr float64, zero bool) (gradNorm float64, err error) {
	if len(o.M) != len(params) || len(o.V) != len(params) || len(grads) != len(params) {
		return 0, fmt.Errorf("trainer: adamw: sizes params %d grads %d m %d v %d differ", len(params), len(grads), len(o.M), len(o.V))
	}
	if err := o.moveTo(be); err != nil {
		return 0, err
	}
	gradNorm = be.GradNorm(grads)
	if err := backendErr(be, "gradient norm"); err != nil {
		return 0, err
	}
	if math.IsNaN(gradNorm) || math.IsInf(gradNorm, 0) {
		return gradNorm, fmt.Errorf("trainer: adamw: gradient norm is %v; update skipped", gradNorm)
	}
	sc := float32(1)
	if o.MaxGradNorm > 0 && gradNorm > o.MaxGradNorm {
		sc = float32(o.MaxGradNorm / (gradNorm + 1e-6))
	}
	o.Step++
	cfg := kernels.AdamWConfig{LR: float32(lr), Beta1: float32(o.Beta1), Beta2: float32(o.Beta2), Eps: float32(o.Eps)}
	for _, t := range table {
		cfg.WeightDecay = 0
		if t.Decay {
			cfg.WeightDecay = float32(o.WeightDecay)
		}
		e := t.Offset + t.Size
		be.AdamWStep(params[t.Offset:e], grads[t.Offset:e], o, t.Offset, sc, cfg, o.Step, zero)
	}
	return gradNorm, backendErr(be, "optimizer step")
}

// Step applies one AdamW update to m with the accumulated m.Grads at the
// learning rate sched.At(o.Step) and returns the pre-clip gradient norm
// and the learning rate used. It leaves m.Grads at zero, ready for the
// next accumulation (ZeroGrad is then free).
func (m *Model) Step(o *AdamW, sched Schedule) (gradNorm, lr float64, err error) {
	lr = sched.At(o.Step)
	if err := backendErr(m.be, "forward/backward"); err != nil {
		return 0, lr, err
	}
	table, params, grads := m.Trainable()
	gradNorm, err = o.update(m.be, table, params, grads, lr, true)
	if err == nil && m.LoRA == nil {
		m.gradsZero = true
	}
	return gradNorm, lr, err
}

// trainTable is the table of what an optimizer updates (Trainable's) and
// its number of values, without allocating gradients.
func (m *Model) trainTable() ([]Tensor, int) {
	tab := m.Table
	if m.LoRA != nil {
		tab = m.LoRA.Table
	}
	if len(tab) == 0 {
		return tab, 0
	}
	return tab, tab[len(tab)-1].Offset + tab[len(tab)-1].Size
}
