package trainer

import "github.com/rljob/rljob/kernels"

// The loss head's backward by slices of the vocabulary (kernels/headslice.go).
// Chunk by chunk of rows, a multi-chunk head recomputes each chunk's
// logits and multiplies: lm_head's gradient (V, C) is then read and
// written once per chunk (545 MB for Qwen2.5's vocabulary, ten times for
// 512 tokens) and lm_head packed transposed once per chunk. By slices of
// the vocabulary, each slice of W ids recomputes the logits of all N rows
// at those ids from the forward's packed lm_head, turns them into dlogits
// from the forward's per-row max, normaliser, lse and entropy, and
// multiplies: dlnf (N, C) += dlogits·lm_head[ids] continues every row's
// sum over the vocabulary in order, and lm_head's gradient rows get their
// whole sum over the N rows at once. The bits are the row form's
// (TestHeadSlicedIsRows): in bf16, whose weight-gradient products sum the
// rows in pairs, when the row form's chunks have an even number of rows
// (headChunk's default does); it uses the same two (chunk, V) buffers,
// and in bf16 needs no lm_head packed transposed (packHeadT).

// slicedHead is a backend that runs the loss head's backward by slices of
// the vocabulary (the CPU backend; a device backend keeps the row form).
type slicedHead interface {
	// HeadForwardMax is HeadForward that also writes each row's max z
	// (kernels.HeadForwardMax).
	HeadForwardMax(e, r, lse, logp, ent, mx, logits []float32, targets []int32, N, V, VL int, temp float32)
	// HeadSliceLogp and HeadSliceCE write the dlogits (N, W) of the ids
	// v0..v0+W−1 from their logits (kernels.HeadSliceLogp, HeadSliceCE).
	HeadSliceLogp(d, logits, mx, r, dlogp, dent, lse, ent []float32, targets []int32, N, W, v0, VL int, temp float32)
	HeadSliceCE(d, logits, mx, r []float32, dloss float32, targets []int32, count, N, W, v0, VL int)
}

func (cpuBackend) HeadForwardMax(e, r, lse, logp, ent, mx, logits []float32, targets []int32, N, V, VL int, temp float32) {
	kernels.HeadForwardMax(e, r, lse, logp, ent, mx, logits, targets, N, V, VL, temp)
}

func (cpuBackend) HeadSliceLogp(d, logits, mx, r, dlogp, dent, lse, ent []float32, targets []int32, N, W, v0, VL int, temp float32) {
	kernels.HeadSliceLogp(d, logits, mx, r, dlogp, dent, lse, ent, targets, N, W, v0, VL, temp)
}

func (cpuBackend) HeadSliceCE(d, logits, mx, r []float32, dloss float32, targets []int32, count, N, W, v0, VL int) {
	kernels.HeadSliceCE(d, logits, mx, r, dloss, targets, count, N, W, v0, VL)
}

// headLoss turns the head's saved state into dlogits, in the two forms of
// the backward: rows overwrites hexp, the forward's exp(z − max) of rows
// lo..lo+rows−1, with their dlogits; slice writes the dlogits (N, W) of
// the ids v0..v0+W−1 into d from their logits.
type headLoss struct {
	rows  func(lo, rows int)
	slice func(sh slicedHead, d, logits []float32, N, W, v0 int)
}

// headSliceWidth is the vocabulary slice the backward of N rows runs
// with, or 0 for the row form: the CPU's head when the forward ran
// in more than one chunk (a single chunk's e is still in hexp), as many
// ids as the chunk buffers hold for N rows, a multiple of 16 (a packed
// panel).
func (m *Model) headSliceWidth(N int) int {
	if _, ok := m.be.(slicedHead); !ok || m.fw.headKept || m.noHeadSlices {
		return 0
	}
	W := len(m.acts.hlog) / N
	W -= W % 16
	if W < 16 {
		return 0
	}
	return min(W, m.Config.VocabSize)
}

// headBackwardSliced is the head's backward by slices of W ids:
// dln (N, C) += dlogits·lm_head and lm_head's gradient += dlogitsᵀ·lnf.
func (m *Model) headBackwardSliced(dln []float32, loss headLoss, N, W int) {
	a, c := &m.acts, m.Config
	C, V := c.HiddenSize, c.VocabSize
	sh := m.be.(slicedHead)
	var dhead []float32
	for v0 := 0; v0 < V; v0 += W {
		w := min(W, V-v0)
		logits, d := a.hlog[:N*w], a.hexp[:N*w]
		m.headSliceLogits(logits, v0, w, N)
		loss.slice(sh, d, logits, N, w, v0)
		if m.G.LMHead != nil {
			dhead = m.G.LMHead[v0*C : (v0+w)*C]
		}
		m.linearBackward(dln, dhead, nil, d, a.lnf[:N*C], m.W.LMHead[v0*C:(v0+w)*C], nil, N, C, w)
	}
}

// headSliceLogits writes the logits (N, w) of the ids v0..v0+w−1 of the
// N rows of lnf: columns of headLogits' product, the same bits.
func (m *Model) headSliceLogits(logits []float32, v0, w, N int) {
	C := m.Config.HiddenSize
	lnf := m.acts.lnf[:N*C]
	if m.isBF16() {
		m.be.MatmulForwardBF16(logits, lnf, m.bf.head.Rows(v0, v0+w), nil, N)
		return
	}
	if m.headPW == nil { // headStreamed
		m.be.MatmulForward(logits, lnf, m.W.LMHead[v0*C:(v0+w)*C], nil, N, C, w)
		return
	}
	m.be.MatmulForwardPacked(logits, lnf, m.headPW.Rows(v0, v0+w), nil, N)
}
