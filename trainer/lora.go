package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// LoRA (Hu et al. 2021) as PEFT computes it: a targeted linear layer
// y = x·Wᵀ + b becomes
//
//	y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ,   A (r, in), B (out, r), s = alpha/r
//
// with W and b frozen. A starts ~ U(−1/√in, 1/√in) (PEFT's kaiming-uniform
// with a = √5), B at 0, so an adapter starts as the identity. The two
// products are the backend's MatmulForward (batch-invariant) and the
// sum is one rounding per element in a fixed order, so the sampler's
// KV-cache decode and the trainer's forward, which both call loraAdd,
// still give a token the same bits.

// LoRA target modules, by their short name (lora_targets) and PEFT's
// module name (target_modules).
const (
	loraQ = iota
	loraK
	loraV
	loraO
	loraGate
	loraUp
	loraDown
	numLoRATargets
)

// LoRATargetNames are the valid lora_targets, in layer order.
var LoRATargetNames = []string{"q", "k", "v", "o", "gate", "up", "down"}

// loraModules are PEFT's module paths of the targets within a layer.
var loraModules = []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

// LoRAConfig is an adapter's shape: rank r, alpha (scale alpha/r), the
// dropout on the adapter's input (only 0 is implemented: a dropout would
// make the training forward differ from the sampler's) and the targets.
type LoRAConfig struct {
	Rank    int      `json:"r"`
	Alpha   float64  `json:"lora_alpha"`
	Dropout float64  `json:"lora_dropout"`
	Targets []string `json:"targets"` // short names, in LoRATargetNames order
}

// ParseLoRATargets turns "q,k,v,o" (or "all") into short names in layer
// order; PEFT's module names (q_proj, gate_proj, ...) are accepted too. An
// unknown name is an error listing the valid ones.
func ParseLoRATargets(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" || strings.TrimSpace(s) == "all-linear" {
		return slices.Clone(LoRATargetNames), nil
	}
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := loraTargetIndex(f)
		if i < 0 {
			return nil, fmt.Errorf("trainer: lora target %q is not a module of a Llama/Qwen2 layer (valid: %s, or all)", f, strings.Join(LoRATargetNames, ", "))
		}
		seen[i] = true
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("trainer: no lora targets in %q (valid: %s, or all)", s, strings.Join(LoRATargetNames, ", "))
	}
	var out []string
	for i, n := range LoRATargetNames {
		if seen[i] {
			out = append(out, n)
		}
	}
	return out, nil
}

// loraTargetIndex maps "q", "q_proj" or "self_attn.q_proj" to loraQ, ...;
// -1 when unknown.
func loraTargetIndex(name string) int {
	for i, n := range LoRATargetNames {
		mod := loraModules[i]
		short := mod[strings.IndexByte(mod, '.')+1:]
		if name == n || name == short || name == mod {
			return i
		}
	}
	return -1
}

// Validate checks the ranges: rank ≥ 1, alpha > 0, dropout 0, targets known.
func (c LoRAConfig) Validate() error {
	switch {
	case c.Rank < 1 || c.Rank > 4096:
		return fmt.Errorf("trainer: lora_rank %d out of range (1..4096; 8–64 is usual)", c.Rank)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("trainer: lora_alpha %v must be > 0 (PEFT's default is 8; 2×rank is common)", c.Alpha)
	case c.Dropout != 0:
		return fmt.Errorf("trainer: lora_dropout %v: only 0 is implemented (a dropout would break the bitwise rollout/train log-prob parity)", c.Dropout)
	case len(c.Targets) == 0:
		return fmt.Errorf("trainer: no lora targets (valid: %s)", strings.Join(LoRATargetNames, ", "))
	}
	for _, t := range c.Targets {
		if loraTargetIndex(t) < 0 {
			return fmt.Errorf("trainer: lora target %q unknown (valid: %s)", t, strings.Join(LoRATargetNames, ", "))
		}
	}
	return nil
}

// Equal reports whether two configs describe the same adapter.
func (c LoRAConfig) Equal(o LoRAConfig) bool {
	return c.Rank == o.Rank && c.Alpha == o.Alpha && c.Dropout == o.Dropout && slices.Equal(c.Targets, o.Targets)
}

// LoRA is a model's adapters: a flat parameter buffer (and its gradient)
// with a PEFT-named table, and the views per layer and target.
type LoRA struct {
	Config LoRAConfig
	// Base names the frozen base the adapters were trained on: its
	// checkpoint folder and fingerprint (BaseFingerprint).
	Base    string
	BaseFP  string
	Table   []Tensor
	Params  []float32
	Grads   []float32
	scale   float32
	pairs   [][numLoRATargets]*loraPair // per layer; nil where not targeted
	scratch struct{ u, d, du []float32 }
}

// loraPair is one adapted linear layer's A (r, in) and B (out, r) and their
// gradients.
type loraPair struct {
	A, B, GA, GB []float32
	in, out      int
}

// loraShape is target t's (out, in) in config c.
func loraShape(c Config, t int) (out, in int) {
	C, I := c.HiddenSize, c.IntermediateSize
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	switch t {
	case loraQ:
		return qd, C
	case loraK, loraV:
		return kvd, C
	case loraO:
		return C, qd
	case loraGate, loraUp:
		return I, C
	}
	return C, I // down
}

// loraTensorName is PEFT's saved name of layer l, target t, matrix ab ("A" or "B").
func loraTensorName(l, t int, ab string) string {
	return fmt.Sprintf("base_model.model.model.layers.%d.%s.lora_%s.weight", l, loraModules[t], ab)
}

// LoRATable lists the adapter tensors of cfg on a model with config c,
// per layer and target in layer order, A then B, with PEFT's names.
func LoRATable(c Config, cfg LoRAConfig) []Tensor {
	var tab []Tensor
	off := 0
	for l := range c.NumLayers {
		for _, name := range cfg.Targets {
			t := loraTargetIndex(name)
			out, in := loraShape(c, t)
			tab = append(tab, Tensor{Name: loraTensorName(l, t, "A"), Shape: []int{cfg.Rank, in}, Offset: off, Size: cfg.Rank * in, Decay: true})
			off += cfg.Rank * in
			tab = append(tab, Tensor{Name: loraTensorName(l, t, "B"), Shape: []int{out, cfg.Rank}, Offset: off, Size: out * cfg.Rank, Decay: true})
			off += out * cfg.Rank
		}
	}
	return tab
}

// newLoRAZero allocates zeroed adapters of cfg for config c.
func newLoRAZero(c Config, cfg LoRAConfig) (*LoRA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tab := LoRATable(c, cfg)
	n := 0
	if len(tab) > 0 {
		n = tab[len(tab)-1].Offset + tab[len(tab)-1].Size
	}
	lo := &LoRA{Config: cfg, Table: tab, Params: takeFloats(n), Grads: takeFloats(n),
		scale: float32(cfg.Alpha / float64(cfg.Rank)), pairs: make([][numLoRATargets]*loraPair, c.NumLayers)}
	i := 0
	for l := range c.NumLayers {
		for _, name := range cfg.Targets {
			t := loraTargetIndex(name)
			a, b := tab[i], tab[i+1]
			out, in := loraShape(c, t)
			lo.pairs[l][t] = &loraPair{
				A: lo.Params[a.Offset : a.Offset+a.Size], B: lo.Params[b.Offset : b.Offset+b.Size],
				GA: lo.Grads[a.Offset : a.Offset+a.Size], GB: lo.Grads[b.Offset : b.Offset+b.Size], in: in, out: out}
			i += 2
		}
	}
	return lo, nil
}

// NewLoRA attaches fresh adapters of cfg to m (A ~ U(−1/√in, 1/√in) from
// seed, B = 0) and freezes m's base. base and baseFP name the base
// checkpoint (kept in the adapter's checkpoint).
func NewLoRA(m *Model, cfg LoRAConfig, seed uint64, base, baseFP string) (*LoRA, error) {
	lo, err := newLoRAZero(m.Config, cfg)
	if err != nil {
		return nil, err
	}
	lo.Base, lo.BaseFP = base, baseFP
	for ti, t := range lo.Table {
		if !strings.HasSuffix(t.Name, "lora_A.weight") {
			continue
		}
		bound := 1 / math.Sqrt(float64(t.Shape[1]))
		rng := rand.New(rand.NewPCG(seed, uint64(ti)))
		for i := range lo.Params[t.Offset : t.Offset+t.Size] {
			lo.Params[t.Offset+i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	m.attachLoRA(lo)
	return lo, nil
}

// attachLoRA puts lo on m and drops m's base gradients (the base is frozen).
func (m *Model) attachLoRA(lo *LoRA) {
	m.LoRA = lo
	m.be.Keep(lo.Params, "the LoRA adapters")
	m.be.Keep(lo.Grads, "the LoRA adapters' gradients")
	m.be.Forget(m.Grads)
	releaseFloats(m.Grads)
	m.Grads, m.G = nil, Weights{}
}

func (lo *LoRA) release(be Backend) {
	be.Forget(lo.Params)
	be.Forget(lo.Grads)
	be.Forget(lo.scratch.u)
	be.Forget(lo.scratch.d)
	be.Forget(lo.scratch.du)
	releaseFloats(lo.Params, lo.Grads)
	lo.Params, lo.Grads, lo.pairs = nil, nil, nil
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// loraAdd adds layer l's target t adapter output s·(x·Aᵀ)·Bᵀ to out (N,
// out) for the input x (N, in); nothing without an adapter there.
func (m *Model) loraAdd(out, x []float32, l, t, N int) {
	if m.LoRA == nil || N <= 0 {
		return
	}
	p := m.LoRA.pairs[l][t]
	if p == nil {
		return
	}
	lo, r := m.LoRA, m.LoRA.Config.Rank
	u, d, _ := lo.scratchFor(m.be, N*r, N*p.out)
	m.be.MatmulForward(u, x[:N*p.in], p.A, nil, N, p.in, r)
	m.be.MatmulForward(d, u, p.B, nil, N, r, p.out)
	m.be.ScaleAdd(out[:N*p.out], d, lo.scale, true)
}

// scratchFor returns the adapters' scratch u (nu), d (nd) and du (nu),
// grown when too small; each is kept by be (on a GPU it stays there).
func (lo *LoRA) scratchFor(be Backend, nu, nd int) (u, d, du []float32) {
	sc := &lo.scratch
	sc.u = keptGrow(be, sc.u, nu, "the LoRA adapters' scratch")
	sc.d = keptGrow(be, sc.d, nd, "the LoRA adapters' outputs")
	sc.du = keptGrow(be, sc.du, nu, "the LoRA adapters' scratch")
	return sc.u, sc.d, sc.du
}

// loraBackward accumulates the adapter's gradients for layer l, target t
// and dx (N, in) += s·dout·B·A, given dout (N, out) and the input x (N,
// in). u = x·Aᵀ is recomputed (it is N×r).
func (m *Model) loraBackward(dx, dout, x []float32, l, t, N int) {
	if m.LoRA == nil {
		return
	}
	p := m.LoRA.pairs[l][t]
	if p == nil {
		return
	}
	lo, r := m.LoRA, m.LoRA.Config.Rank
	u, ds, du := lo.scratchFor(m.be, N*r, N*p.out)
	m.be.MatmulForward(u, x[:N*p.in], p.A, nil, N, p.in, r)
	m.be.ScaleAdd(ds, dout[:N*p.out], lo.scale, false)
	m.be.Zero(du)
	m.be.MatmulBackward(du, p.GB, nil, ds, u, p.B, N, r, p.out)
	m.be.MatmulBackward(dx, p.GA, nil, du, x[:N*p.in], p.A, N, p.in, r)
}

// MergeLoRA folds the adapters into the base weights, W += s·B·A (float64
// sums, one rounding), and removes them: m becomes a plain model whose
// forward equals the adapted one up to float32 rounding.
func (m *Model) MergeLoRA() {
	lo := m.LoRA
	if lo == nil {
		return
	}
	r := lo.Config.Rank
	m.host(lo.Params)
	m.host(m.Params)
	for l := range lo.pairs {
		w := &m.W.Layers[l]
		bases := [numLoRATargets][]float32{w.Wq, w.Wk, w.Wv, w.Wo, w.Wgate, w.Wup, w.Wdown}
		for t, p := range lo.pairs[l] {
			if p == nil {
				continue
			}
			W := bases[t]
			parallelFor(p.out, 16, func(a, b int) {
				for o := a; o < b; o++ {
					for i := range p.in {
						var acc float64
						for k := range r {
							acc += float64(p.B[o*r+k]) * float64(p.A[k*p.in+i])
						}
						W[o*p.in+i] = float32(float64(W[o*p.in+i]) + float64(lo.scale)*acc)
					}
				}
			})
		}
	}
	m.be.FromHost(m.Params)
	m.LoRA = nil
	lo.release(m.be)
	m.WeightsChanged()
}
