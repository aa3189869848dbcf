package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/rljob/rljob/kernels"
	"github.com/rljob/rljob/trainer/safetensors"
)

// Training and sampling in bf16 (Model.DType = DTypeBF16), as PyTorch's
// mixed precision with bf16 parameters and fp32 master weights:
//
//   - Params stays float32: the master weights AdamW updates.
//   - The forward computes with the parameters rounded to bf16, all of
//     them: the linear layers' matrices and lm_head are packed as bf16
//     (kernels.PackWeightBF16) before every forward, RMSNorm gains and
//     biases are rounded copies, and the embedding's output rows are
//     rounded. So the forward is a function of the bf16 weights alone: a
//     rollout from the bf16 model.safetensors computes what the trainer's
//     forward computes from its fp32 masters.
//   - Every linear layer's input is rounded to bf16 (as autocast does) and
//     multiplied on kernels.MatmulForwardBF16 (VDPBF16PS, float32
//     accumulation); the element-wise kernels and attention run in
//     float32.
//   - The backward's linear-layer products are bf16 GEMMs too
//     (kernels.MatmulBackwardBF16: bf16(dout)·bf16(W) and
//     bf16(dout)ᵀ·bf16(inp)); gradients, moments and updates are float32.
//
// The sampler (kvcache.go) uses the same packed weights and kernels, so
// rollout and train log-probs stay bitwise equal in bf16 too.

// Model dtypes.
const (
	DTypeFP32 = "fp32"
	DTypeBF16 = "bf16"
)

// ParseDType checks a dtype name ("fp32" or "bf16"; "" is fp32).
func ParseDType(s string) (string, error) {
	switch s {
	case "", DTypeFP32, "float32":
		return DTypeFP32, nil
	case DTypeBF16, "bfloat16":
		return DTypeBF16, nil
	}
	return "", fmt.Errorf("trainer: dtype %q: want fp32 or bf16", s)
}

// torchDType is the HF config.json torch_dtype of a model dtype.
func torchDType(dtype string) string {
	if dtype == DTypeBF16 {
		return "bfloat16"
	}
	return "float32"
}

// isBF16 reports whether the model computes in bf16.
func (m *Model) isBF16() bool { return m.DType == DTypeBF16 }

// SetDType switches the model's compute dtype (fp32 or bf16).
func (m *Model) SetDType(dtype string) error {
	d, err := ParseDType(dtype)
	if err != nil {
		return err
	}
	if m.sampler != nil && d != m.DType {
		return fmt.Errorf("trainer: model loaded for sampling in %s cannot switch to %s (load it with LoadForSampling(dir, %q))", m.DType, d, d)
	}
	m.DType = d // an fp32 model keeps m.bf's buffers for a switch back
	m.WeightsChanged()
	return nil
}

// bf16Weights are the bf16 forms of a model's parameters the forward
// uses: the matrices packed, the small tensors rounded.
type bf16Weights struct {
	layers []bf16Layer
	head   *kernels.PackedWeightBF16
	headT  *kernels.PackedWeightBF16 // lm_head packed transposed, for the backward's dlnf
	// w: norms and biases are rounded copies; the matrices, Embed and
	// LMHead are the fp32 masters (the kernels round them).
	w Weights
	// gen and genT are the owner's wgen+1 when the forms (layers' q..down
	// and head; layers' qT..downT) were made, 0 for none.
	gen, genT uint64
}

type bf16Layer struct {
	q, k, v, o, gate, up, down *kernels.PackedWeightBF16
	// the same matrices packed transposed (PackWeightBF16T), for the
	// backward's dinp products (refreshBF16T)
	qT, kT, vT, oT, gateT, upT, downT *kernels.PackedWeightBF16
}

// refreshBF16 rounds and packs the parameters for the next forward when
// they have changed since the last packing (WeightsChanged), like
// Model.packHead's lm_head.
func (m *Model) refreshBF16() {
	c := m.Config
	if m.bf == nil {
		m.bf = takeBF16(c)
	}
	bf := m.bf
	if bf.gen == m.wgen+1 {
		return
	}
	defer func() { bf.gen = m.wgen + 1 }()
	src := &m.W
	bf.w.Embed, bf.w.LMHead = src.Embed, src.LMHead
	bf.w.Norm = roundedCopy(bf.w.Norm, m.host(src.Norm))
	if len(bf.w.Layers) != c.NumLayers {
		bf.w.Layers = make([]LayerWeights, c.NumLayers)
	}
	for l := range bf.layers {
		w, r := &src.Layers[l], &bf.w.Layers[l]
		for _, x := range m.bf16Matrices(l) {
			*x.p = m.be.PackWeightBF16(*x.p, x.w, x.rows, x.cols)
		}
		*r = LayerWeights{
			InputNorm: roundedCopy(r.InputNorm, m.host(w.InputNorm)), PostNorm: roundedCopy(r.PostNorm, m.host(w.PostNorm)),
			Bq: roundedCopy(r.Bq, m.host(w.Bq)), Bk: roundedCopy(r.Bk, m.host(w.Bk)), Bv: roundedCopy(r.Bv, m.host(w.Bv)),
			Wq: w.Wq, Wk: w.Wk, Wv: w.Wv, Wo: w.Wo, Wgate: w.Wgate, Wup: w.Wup, Wdown: w.Wdown,
		}
	}
	bf.head = m.be.PackWeightBF16(bf.head, src.LMHead, c.VocabSize, c.HiddenSize)
}

// roundedCopy returns src rounded to bf16 (as float32), in dst's memory
// when it fits; nil for a nil src.
func roundedCopy(dst, src []float32) []float32 {
	if src == nil {
		return nil
	}
	if cap(dst) < len(src) {
		dst = make([]float32, len(src))
	}
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = kernels.BF16Float(kernels.BF16(x))
	}
	return dst
}

// roundBF16 rounds x to bf16 in place.
func roundBF16(x []float32) {
	parallelFor(len(x), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] = kernels.BF16Float(kernels.BF16(x[i]))
		}
	})
}

// cw are the weights the forward computes with: the model's own in fp32,
// the bf16 forms' in bf16 (norms and biases rounded).
func (m *Model) cw() *Weights {
	if m.isBF16() {
		return &m.bf.w
	}
	return &m.W
}

// linear is one linear layer of the forward: out (N, OC) = inp (N, C) ·
// wᵀ + bias, with the batch-invariant fp32 GEMM or, in bf16, the bf16 GEMM
// on pw (w packed).
func (m *Model) linear(out, inp, w []float32, pw *kernels.PackedWeightBF16, bias []float32, N, C, OC int) {
	if m.isBF16() {
		m.be.MatmulForwardBF16(out, inp, pw, bias, N)
		return
	}
	m.be.MatmulForward(out, inp, w, bias, N, C, OC)
}

// refreshBF16T packs the layers' matrices transposed for the backward
// when the parameters have changed since the last packing: the
// micro-batches of one optimizer step, and every step of a LoRA run's
// frozen base, share one packing (2 bytes a weight, BF16Memory).
func (m *Model) refreshBF16T() {
	bf := m.bf
	if !m.isBF16() || bf == nil || bf.genT == m.wgen+1 {
		return
	}
	for l := range bf.layers {
		for _, x := range m.bf16Matrices(l) {
			*x.pT = m.be.PackWeightBF16T(*x.pT, x.w, x.rows, x.cols)
		}
	}
	bf.genT = m.wgen + 1
}

// bf16Matrix is one matrix of a layer, (rows, cols) row-major, and where
// its bf16 packings go: as it is (p) and transposed (pT).
type bf16Matrix struct {
	w          []float32
	rows, cols int
	p, pT      **kernels.PackedWeightBF16
}

// bf16Matrices are layer l's seven matrices (q, k, v, o, gate, up, down).
func (m *Model) bf16Matrices(l int) [7]bf16Matrix {
	c := m.Config
	C, I := c.HiddenSize, c.IntermediateSize
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	w, p := &m.W.Layers[l], &m.bf.layers[l]
	return [7]bf16Matrix{
		{w.Wq, qd, C, &p.q, &p.qT}, {w.Wk, kvd, C, &p.k, &p.kT}, {w.Wv, kvd, C, &p.v, &p.vT},
		{w.Wo, C, qd, &p.o, &p.oT}, {w.Wgate, I, C, &p.gate, &p.gateT}, {w.Wup, I, C, &p.up, &p.upT},
		{w.Wdown, C, I, &p.down, &p.downT},
	}
}

// linearBackward is linear's backward (kernels.MatmulBackward's shapes);
// in bf16 wT, when not nil, is weight packed transposed (refreshBF16T).
func (m *Model) linearBackward(dinp, dweight, dbias, dout, inp, weight []float32, wT *kernels.PackedWeightBF16, N, C, OC int) {
	if m.isBF16() {
		if wT != nil {
			m.be.MatmulBackwardBF16Packed(dinp, dweight, dbias, dout, inp, weight, wT, N, C, OC)
			return
		}
		m.be.MatmulBackwardBF16(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
		return
	}
	m.be.MatmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}

// bfLayer is layer l's packed bf16 matrices (nil in fp32).
func (m *Model) bfLayer(l int) *bf16Layer {
	if m.bf == nil {
		return &bf16Layer{}
	}
	return &m.bf.layers[l]
}

// optMasterPrefix names the fp32 master weights of a bf16 model in
// optimizer.safetensors (model.safetensors holds their bf16 rounding).
const optMasterPrefix = "master."

// fileDType is the safetensors dtype of model.safetensors: BF16 for a bf16
// model (HF's layout for torch_dtype bfloat16), F32 otherwise.
func (m *Model) fileDType() string {
	if m.isBF16() {
		return "BF16"
	}
	return "F32"
}

// masterTensors are the fp32 master weights a bf16 model's optimizer
// state keeps (none in fp32, or under LoRA where the base is frozen).
func (m *Model) masterTensors() []safetensors.Tensor {
	if !m.isBF16() || m.LoRA != nil {
		return nil
	}
	ts := make([]safetensors.Tensor, len(m.Table))
	for i, t := range m.Table {
		ts[i] = safetensors.Tensor{Name: optMasterPrefix + t.Name, Shape: t.Shape, Data: m.Params[t.Offset : t.Offset+t.Size]}
	}
	return ts
}

// readMasters reads a bf16 model's fp32 master weights from the optimizer
// file f into Params (replacing model.safetensors' bf16 values) and
// returns how many tensors it read: every one must be there.
func (m *Model) readMasters(f *safetensors.File) (int, error) {
	if !m.isBF16() || m.LoRA != nil {
		return 0, nil
	}
	for _, t := range m.Table {
		tt := t
		tt.Name = optMasterPrefix + t.Name
		if err := readTensor(f, tt, m.Params[t.Offset:t.Offset+t.Size], []string{"F32"}); err != nil {
			return 0, fmt.Errorf("bf16 model: fp32 master weights: %w", err)
		}
	}
	m.be.FromHost(m.Params)
	return len(m.Table), nil
}

// configDType is the model dtype a config.json names: DTypeBF16 for
// torch_dtype "bfloat16", DTypeFP32 otherwise (float32, float16, absent or
// unreadable: LoadConfig reports a broken file).
func configDType(path string) string {
	var h struct {
		TorchDtype string `json:"torch_dtype"`
	}
	if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &h) == nil && h.TorchDtype == "bfloat16" {
		return DTypeBF16
	}
	return DTypeFP32
}

// packHeadT packs lm_head transposed once per backward in bf16: every
// chunk of the head's backward multiplies by it.
func (m *Model) packHeadT() {
	if m.isBF16() {
		c := m.Config
		m.bf.headT = m.be.PackWeightBF16T(m.bf.headT, m.W.LMHead, c.VocabSize, c.HiddenSize)
	}
}

// headBackward is the LM head's linearBackward for one chunk of rows:
// dlnf (rows, C) += dlogits·lm_head, dhead (V, C) += dlogitsᵀ·lnf.
func (m *Model) headBackward(dlnf, dhead, dlogits, lnf []float32, rows int) {
	c := m.Config
	C, V := c.HiddenSize, c.VocabSize
	if m.isBF16() {
		m.be.MatmulBackwardBF16Packed(dlnf, dhead, nil, dlogits, lnf, m.W.LMHead, m.bf.headT, rows, C, V)
		return
	}
	m.be.MatmulBackward(dlnf, dhead, nil, dlogits, lnf, m.W.LMHead, rows, C, V)
}

// The bf16 forms of a model go back to the process when the model is
// released (Model.Release), as its float32 buffers do (buffers.go), so the
// next stage's bf16 model of the same config packs into memory already
// touched instead of page-faulting a fresh gigabyte at every step.
var bf16Pool struct {
	sync.Mutex
	c  Config
	bf *bf16Weights
}

// takeBF16 returns the released bf16 forms of a model of config c, or new
// empty ones.
func takeBF16(c Config) *bf16Weights {
	bf16Pool.Lock()
	defer bf16Pool.Unlock()
	if bf := bf16Pool.bf; bf != nil && bf16Pool.c == c {
		bf16Pool.bf = nil
		bf.gen, bf.genT = 0, 0 // another model's forms
		return bf
	}
	return &bf16Weights{layers: make([]bf16Layer, c.NumLayers)}
}

// releaseBF16 keeps m's bf16 forms for the next model of its config (one
// is kept; a sample-only model's are its weights and are dropped).
func (m *Model) releaseBF16() {
	if m.bf == nil || m.sampler != nil {
		m.bf = nil
		return
	}
	bf16Pool.Lock()
	bf16Pool.c, bf16Pool.bf = m.Config, m.bf
	bf16Pool.Unlock()
	m.bf = nil
}
