package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Tensor is one named view into the flat parameter buffer. The same table
// indexes the gradients and the AdamW moments, so checkpoint I/O, the
// optimizer, gradient norms and tests all walk one list.
type Tensor struct {
	Name   string // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
	Shape  []int  // row-major; weights of linear layers are (out, in)
	Offset int    // first element in the flat buffer
	Size   int    // product of Shape
	// Decay says whether AdamW's decoupled weight decay applies. It is off
	// for RMSNorm gains and biases (as in HF Trainer and nanoGPT: decaying a
	// gain towards 0 shrinks the activations rather than regularising).
	Decay bool
}

// ParamTable lists every parameter tensor of a model with config c, with
// HF names and shapes, in the order they sit in the flat buffer:
//
//	model.embed_tokens.weight                       (V, C)
//	per layer i:
//	  model.layers.{i}.input_layernorm.weight       (C)
//	  model.layers.{i}.self_attn.q_proj.weight      (H*hd, C)   (+ .bias (H*hd) when QKVBias)
//	  model.layers.{i}.self_attn.k_proj.weight      (KV*hd, C)  (+ .bias (KV*hd))
//	  model.layers.{i}.self_attn.v_proj.weight      (KV*hd, C)  (+ .bias (KV*hd))
//	  model.layers.{i}.self_attn.o_proj.weight      (C, H*hd)
//	  model.layers.{i}.post_attention_layernorm.weight (C)
//	  model.layers.{i}.mlp.gate_proj.weight         (I, C)
//	  model.layers.{i}.mlp.up_proj.weight           (I, C)
//	  model.layers.{i}.mlp.down_proj.weight         (C, I)
//	model.norm.weight                               (C)
//	lm_head.weight                                  (V, C)  (absent when tied)
func ParamTable(c Config) []Tensor {
	C, I, V := c.HiddenSize, c.IntermediateSize, c.VocabSize
	qd, kvd := c.NumHeads*c.HeadDim(), c.NumKVHeads*c.HeadDim()
	var t []Tensor
	off := 0
	add := func(name string, decay bool, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		t = append(t, Tensor{Name: name, Shape: shape, Offset: off, Size: n, Decay: decay})
		off += n
	}
	add("model.embed_tokens.weight", true, V, C)
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", false, C)
		add(p+"self_attn.q_proj.weight", true, qd, C)
		if c.QKVBias {
			add(p+"self_attn.q_proj.bias", false, qd)
		}
		add(p+"self_attn.k_proj.weight", true, kvd, C)
		if c.QKVBias {
			add(p+"self_attn.k_proj.bias", false, kvd)
		}
		add(p+"self_attn.v_proj.weight", true, kvd, C)
		if c.QKVBias {
			add(p+"self_attn.v_proj.bias", false, kvd)
		}
		add(p+"self_attn.o_proj.weight", true, C, qd)
		add(p+"post_attention_layernorm.weight", false, C)
		add(p+"mlp.gate_proj.weight", true, I, C)
		add(p+"mlp.up_proj.weight", true, I, C)
		add(p+"mlp.down_proj.weight", true, C, I)
	}
	add("model.norm.weight", false, C)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", true, V, C)
	}
	return t
}

// NumParams is the length of the flat parameter buffer.
func NumParams(c Config) int {
	t := ParamTable(c)
	last := t[len(t)-1]
	return last.Offset + last.Size
}

// MatmulParams counts the parameters that take part in a matmul: all but
// the input embedding rows (a lookup). With tied embeddings the shared
// matrix is counted once, as the lm_head. This is the "params" of the
// 6·params·tokens FLOP estimate.
func MatmulParams(c Config) int {
	n := NumParams(c)
	if !c.TieWordEmbeddings {
		n -= c.VocabSize * c.HiddenSize
	}
	return n
}

// LayerWeights are the views of one transformer block into a flat buffer
// (parameters or gradients). Bias slices are nil without QKVBias.
type LayerWeights struct {
	InputNorm         []float32 // (C)
	Wq, Bq            []float32 // (H*hd, C), (H*hd)
	Wk, Bk            []float32 // (KV*hd, C), (KV*hd)
	Wv, Bv            []float32 // (KV*hd, C), (KV*hd)
	Wo                []float32 // (C, H*hd)
	PostNorm          []float32 // (C)
	Wgate, Wup, Wdown []float32 // (I, C), (I, C), (C, I)
}

// Weights are the named views of a whole model into a flat buffer.
// With tied embeddings LMHead and Embed are the same slice, so the two
// gradient contributions add up in one place.
type Weights struct {
	Embed  []float32 // (V, C)
	Layers []LayerWeights
	Norm   []float32 // (C)
	LMHead []float32 // (V, C)
}

// bindWeights makes the views of buf (len NumParams(c)) following table.
func bindWeights(c Config, table []Tensor, buf []float32) Weights {
	byName := make(map[string][]float32, len(table))
	for _, t := range table {
		byName[t.Name] = buf[t.Offset : t.Offset+t.Size : t.Offset+t.Size]
	}
	w := Weights{
		Embed:  byName["model.embed_tokens.weight"],
		Norm:   byName["model.norm.weight"],
		LMHead: byName["lm_head.weight"],
		Layers: make([]LayerWeights, c.NumLayers),
	}
	if c.TieWordEmbeddings {
		w.LMHead = w.Embed
	}
	for l := range w.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		w.Layers[l] = LayerWeights{
			InputNorm: byName[p+"input_layernorm.weight"],
			Wq:        byName[p+"self_attn.q_proj.weight"],
			Bq:        byName[p+"self_attn.q_proj.bias"],
			Wk:        byName[p+"self_attn.k_proj.weight"],
			Bk:        byName[p+"self_attn.k_proj.bias"],
			Wv:        byName[p+"self_attn.v_proj.weight"],
			Bv:        byName[p+"self_attn.v_proj.bias"],
			Wo:        byName[p+"self_attn.o_proj.weight"],
			PostNorm:  byName[p+"post_attention_layernorm.weight"],
			Wgate:     byName[p+"mlp.gate_proj.weight"],
			Wup:       byName[p+"mlp.up_proj.weight"],
			Wdown:     byName[p+"mlp.down_proj.weight"],
		}
	}
	return w
}

// initChunk is the number of values drawn from one random stream in
// initParams.
const initChunk = 1 << 16

// initParams fills buf following table: RMSNorm gains = 1, biases = 0,
// every other tensor ~ N(0, std²). Tensor i's values are drawn in chunks of
// initChunk, chunk j from its own PCG stream seeded (seed, i<<32 | j), so
// the chunks fill in parallel and the values do not depend on the number
// of threads.
func initParams(table []Tensor, buf []float32, seed uint64, std float64) {
	for ti, t := range table {
		v := buf[t.Offset : t.Offset+t.Size]
		switch {
		case isNorm(t.Name):
			for i := range v {
				v[i] = 1
			}
		case isBias(t.Name):
			clear(v)
		default:
			nc := (len(v) + initChunk - 1) / initChunk
			parallelFor(nc, 1, func(lo, hi int) {
				for c := lo; c < hi; c++ {
					rng := rand.New(rand.NewPCG(seed, uint64(ti)<<32|uint64(c)))
					for i := range v[c*initChunk : min((c+1)*initChunk, len(v))] {
						v[c*initChunk+i] = float32(rng.NormFloat64() * std)
					}
				}
			})
		}
	}
}

func isNorm(name string) bool {
	return hasSuffix(name, "layernorm.weight") || name == "model.norm.weight"
}

func isBias(name string) bool { return hasSuffix(name, ".bias") }

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// lookupTensor finds a tensor by name.
func lookupTensor(table []Tensor, name string) (Tensor, bool) {
	for _, t := range table {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// finite reports whether every value is finite.
func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
