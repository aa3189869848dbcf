package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/rljob/rljob/kernels"
)

// Sampler: batched generation with a KV cache (kvcache.go), seeded per
// sequence, returning the log-probability of every sampled token.
//
// Each step, for each unfinished sequence with next-token logits z (V):
//
//	temperature T > 0:  p = softmax(z/T); keep the TopK most probable
//	                    tokens (ties: lower id first), then the smallest
//	                    prefix of them, renormalised, whose mass reaches TopP;
//	                    draw u = rng.Float64()·(kept mass) and take the first
//	                    kept token whose cumulative mass exceeds u (kept
//	                    tokens in descending order, or in id order when
//	                    nothing is truncated).
//	                    logprob = log softmax(z/T)[token]  — the FULL
//	                    distribution, not the truncated one (as verl and TRL
//	                    compute it), with kernels.LogProbRow at
//	                    float32(T), so that Model.ForwardLogp at the same
//	                    temperature on prompt+completion reproduces it bit
//	                    for bit (PPO ratio exactly 1 at the start of an
//	                    on-policy update).
//	temperature 0:      greedy, token = argmax z (lowest id on ties), no
//	                    draw; logprob = log softmax(z)[token] (temperature 1).
//
// Determinism: one *rand.Rand (PCG) per sequence from its seed, one draw
// per sampled token (taken on the host, then the backend's Sample picks
// with it: pickRow on the CPU, the same token on the GPU); the logits of a sequence do not depend on the other
// sequences of the batch nor on GOMAXPROCS (every matmul and the attention
// are kernels' batch-invariant ones: kvcache.go), so a prompt and seed give
// the same tokens and logprob bytes alone, in any batch, with any MaxBatch,
// on any number of threads, and the same logprobs as ForwardLogp.
//
// Padded vocabularies: ids ≥ Model.VocabLimit (the tokenizer's size, when
// the embedding has more rows) are never sampled, and every log-probability
// (here and in ForwardLogp) is normalised over the ids below it: their
// logits count as −∞.

// SampleOptions configure Generate.
type SampleOptions struct {
	// Temperature divides the logits; 0 means greedy. Must be 0 or in
	// [1e-6, ∞) (smaller values overflow z/T in float32).
	Temperature float64
	// TopK keeps the K most probable tokens; 0 (or ≥ vocab) keeps all.
	TopK int
	// TopP keeps the smallest set of most probable tokens whose mass
	// reaches TopP (after TopK); 0 and 1 keep all. Must be in [0, 1].
	TopP float64
	// MaxNewTokens bounds each completion (> 0). A completion is also cut
	// where prompt+completion would exceed max_position_embeddings.
	MaxNewTokens int
	// StopTokens end a completion; the stop token is included in it.
	StopTokens []int
	// StopStrings end a completion as soon as Decode(completion) contains
	// one of them; the completion keeps every token up to and including
	// the one that completed the string. Requires Decode.
	StopStrings []string
	// Decode turns completion token ids into text (for StopStrings).
	Decode func([]int) string
	// MaxBatch bounds the sequences Generate runs at once (their KV
	// caches are what takes memory); 0 runs all. When a sequence finishes,
	// its slot takes the next one, in order, so the batch stays full. The
	// results do not depend on it (nor on the order of the prompts or the
	// thread count): every sequence's logits are computed batch-invariantly.
	MaxBatch int
}

// Finish reasons of a Sample.
const (
	FinishStop   = "stop"   // a stop token or stop string
	FinishLength = "length" // MaxNewTokens or the context length
)

// Sample is one completion.
type Sample struct {
	Tokens       []int32   // completion tokens (prompt excluded)
	Logprobs     []float32 // log-probability of each token (see the top of sample.go)
	FinishReason string    // FinishStop or FinishLength
}

// seedStream is the PCG stream of every sequence's generator (the seed is
// the state): a fixed constant, so a seed alone determines the draws.
const seedStream = 0x726c6a6f62 // "rljob"

// Generate samples one completion per prompt, in a batch, with a KV cache:
// each step runs one token per unfinished sequence, each attending over its
// own cached keys and values (after RoPE), together with the prompts
// (prefill) of the sequences that start in that step. At most
// opt.MaxBatch sequences run at once (all when 0); a finished sequence's
// slot goes to the next prompt in order, so the batch stays full. A prompt
// that occurs several times (GRPO groups) is prefilled once: its cache and
// logits are kept until its last sequence has started. seeds[i] seeds
// sequence i's generator. Prompts may have different lengths (≥ 1 token
// each). Memory: the KV caches hold up to (prompt + completion) · L · 2 ·
// KV·hd float32s per running sequence, and the weights are packed once (a
// copy of the matrices).
//
// Generate reads the parameters and nothing else of m (not its
// activations); it must not run while the parameters change.
func (m *Model) Generate(prompts [][]int32, seeds []uint64, opt SampleOptions) ([]Sample, error) {
	s, err := m.newSampler(prompts, seeds, opt)
	if err != nil {
		return nil, err
	}
	if err := m.generate(context.Background(), s, prompts, nil, nil); err != nil {
		return nil, err
	}
	return s.samples(), nil
}

// GenerateNoCache is Generate without a KV cache: every step re-runs
// Model.Forward over the whole prompt+completion of the unfinished
// sequences (right-padded) and samples from the last position's logits.
// It is the reference twin of Generate (same sampling, same draws; its
// logits come from the training forward, whose batch-invariant kernels give
// the bits of Generate's, so the samples are identical:
// TestSampleKVCacheMatchesNoCache) and the baseline of the sampling
// benchmark. It uses m's activations.
func (m *Model) GenerateNoCache(prompts [][]int32, seeds []uint64, opt SampleOptions) ([]Sample, error) {
	s, err := m.newSampler(prompts, seeds, opt)
	if err != nil {
		return nil, err
	}
	defer s.release()
	V := m.Config.VocabSize
	active := make([]int, len(prompts))
	for i := range active {
		active[i] = i
	}
	for len(active) > 0 {
		T := 0
		for _, i := range active {
			T = max(T, len(prompts[i])+len(s.seqs[i].out.Tokens))
		}
		b := Batch{B: len(active), T: T, Lens: make([]int, len(active)), Tokens: make([]int32, len(active)*T)}
		for j, i := range active {
			row := b.Tokens[j*T : (j+1)*T]
			n := copy(row, prompts[i])
			n += copy(row[n:], s.seqs[i].out.Tokens)
			b.Lens[j] = n
		}
		logits, err := m.Forward(b)
		if err != nil {
			return nil, fmt.Errorf("trainer: generate (no cache): %w", err)
		}
		rows := make([][]float32, len(active))
		for j := range active {
			o := (j*T + b.Lens[j] - 1) * V
			rows[j] = logits[o : o+V]
		}
		_, done := s.steps(active, rows)
		next := active[:0]
		for j, i := range active {
			if !done[j] {
				next = append(next, i)
			}
		}
		active = next
	}
	return s.samples(), nil
}

// sampler is the part of generation shared by Generate and
// GenerateNoCache: options, per-sequence state and the choice of tokens.
type sampler struct {
	opt   SampleOptions
	temp  float32 // float32(opt.Temperature), as ForwardLogp gets it
	topP  float64 // 1 when off
	V     int
	stopT map[int32]bool
	seqs  []seqState
	be    Backend // the model's: picks the tokens (Sample)

	ids []int // completion as []int for Decode
	// steps' buffers, per row: token, logprob, draw, done, logits (V)
	tok  []int32
	lp   []float32
	u    []float64
	done []bool
	rows []float32
}

type seqState struct {
	rng    *rand.Rand
	maxNew int
	out    Sample
	done   bool
	ep     *episodeState // multi-turn state (GenerateEpisodes), else nil
}

func (m *Model) newSampler(prompts [][]int32, seeds []uint64, opt SampleOptions) (*sampler, error) {
	c := m.Config
	V := m.vocabLimit() // ids ≥ V (padding past the tokenizer) are never sampled
	if err := opt.validate(V); err != nil {
		return nil, err
	}
	if len(seeds) != len(prompts) {
		return nil, fmt.Errorf("trainer: generate: %d seeds for %d prompts", len(seeds), len(prompts))
	}
	s := &sampler{opt: opt, temp: float32(opt.Temperature), topP: opt.TopP, V: V,
		stopT: make(map[int32]bool, len(opt.StopTokens)),
		seqs:  make([]seqState, len(prompts)), be: m.be}
	if s.topP == 0 {
		s.topP = 1
	}
	for _, t := range opt.StopTokens {
		s.stopT[int32(t)] = true
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("trainer: generate: prompt %d is empty (give at least one token, e.g. BOS)", i)
		}
		if len(p) >= c.MaxPositionEmbeddings {
			return nil, fmt.Errorf("trainer: generate: prompt %d has %d tokens, which leaves no room under max_position_embeddings %d", i, len(p), c.MaxPositionEmbeddings)
		}
		for t, id := range p {
			if id < 0 || int(id) >= c.VocabSize {
				return nil, fmt.Errorf("trainer: generate: prompt %d position %d: token %d outside vocabulary [0,%d)", i, t, id, c.VocabSize)
			}
		}
		s.seqs[i] = seqState{
			rng:    rand.New(rand.NewPCG(seeds[i], seedStream)),
			maxNew: min(opt.MaxNewTokens, c.MaxPositionEmbeddings-len(p)),
		}
	}
	return s, nil
}

func (o SampleOptions) validate(V int) error {
	switch {
	case !(o.Temperature >= 0) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("trainer: generate: temperature %v must be ≥ 0 and finite", o.Temperature)
	case o.Temperature > 0 && o.Temperature < 1e-6:
		return fmt.Errorf("trainer: generate: temperature %v is below 1e-6; use 0 for greedy", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("trainer: generate: top_k %d must be ≥ 0 (0 = off)", o.TopK)
	case !(o.TopP >= 0 && o.TopP <= 1):
		return fmt.Errorf("trainer: generate: top_p %v must be in [0, 1] (0 or 1 = off)", o.TopP)
	case o.MaxNewTokens <= 0:
		return fmt.Errorf("trainer: generate: max new tokens %d must be > 0", o.MaxNewTokens)
	case len(o.StopStrings) > 0 && o.Decode == nil:
		return fmt.Errorf("trainer: generate: stop strings need a Decode function")
	}
	for _, t := range o.StopTokens {
		if t < 0 || t >= V {
			return fmt.Errorf("trainer: generate: stop token %d outside vocabulary [0,%d)", t, V)
		}
	}
	for _, str := range o.StopStrings {
		if str == "" {
			return fmt.Errorf("trainer: generate: empty stop string")
		}
	}
	return nil
}

// steps samples the next token of each sequence seqs[j] from its logits
// rows[j] (V), appends it with its logprob and says whether the sequence
// is done (done[j]). The tokens of all rows are picked in one backend
// Sample: each sequence's draw is taken from its own stream (one per
// token, as a row alone would take it) and the rows are gathered, so the
// tokens and bits do not depend on which rows are picked together. The
// returned slices are valid until the next call.
func (s *sampler) steps(seqs []int, rows [][]float32) (toks []int32, done []bool) {
	N, V := len(seqs), s.V
	s.tok, s.lp = slices.Grow(s.tok[:0], N)[:N], slices.Grow(s.lp[:0], N)[:N]
	s.u, s.done = slices.Grow(s.u[:0], N)[:N], slices.Grow(s.done[:0], N)[:N]
	for j, i := range seqs {
		s.u[j] = 0
		if s.temp > 0 {
			s.u[j] = s.seqs[i].rng.Float64()
		}
	}
	if N > 0 {
		s.be.Sample(s.tok, s.lp, s.gather(rows), s.u, V, N, V, s.temp, s.opt.TopK, s.topP)
	}
	for j, i := range seqs {
		s.done[j] = s.push(i, s.tok[j], s.lp[j])
	}
	return s.tok, s.done
}

// gather returns the logits rows (each V) one after another: the rows
// themselves when they already are (a decode step's, where the head wrote
// them), else copies in s.rows, made on the backend (the embedding
// lookup's row copy; on a GPU the rows stay there).
func (s *sampler) gather(rows [][]float32) []float32 {
	N, V := len(rows), s.V
	if len(rows[0]) >= V && cap(rows[0]) >= N*V {
		all := rows[0][:N*V]
		base := addr(all)
		consecutive := true
		for j, r := range rows {
			if len(r) < V || addr(r) != base+uintptr(4*j*V) {
				consecutive = false
				break
			}
		}
		if consecutive {
			return all
		}
	}
	s.rows = keptGrow(s.be, s.rows, N*V, "the sampler's gathered logits")
	for j, r := range rows {
		s.be.EmbeddingForward(s.rows[j*V:(j+1)*V], r[:V], rowZero, 1, V)
	}
	return s.rows
}

// rowZero is the one index of a single-row copy by EmbeddingForward.
var rowZero = []int32{0}

// release forgets the buffers the backend keeps for s (at the end of a
// Generate).
func (s *sampler) release() {
	s.be.Forget(s.rows)
}

// push appends token tok with its logprob lp to sequence i and decides
// whether the sequence is done.
func (s *sampler) push(i int, tok int32, lp float32) (done bool) {
	q := &s.seqs[i]
	q.out.Tokens = append(q.out.Tokens, tok)
	q.out.Logprobs = append(q.out.Logprobs, lp)
	turn := q.out.Tokens // the current turn's tokens: a plain sample is one turn
	if q.ep != nil {
		q.ep.policy = append(q.ep.policy, true)
		turn = turn[q.ep.turnStart:]
	}
	switch {
	case s.stopT[tok], s.stopString(turn):
		q.out.FinishReason, q.done = FinishStop, true
	case len(q.out.Tokens) >= q.maxNew, q.ep != nil && q.ep.turnMax > 0 && len(turn) >= q.ep.turnMax:
		q.out.FinishReason, q.done = FinishLength, true
	}
	return q.done
}

func (s *sampler) stopString(toks []int32) bool {
	if len(s.opt.StopStrings) == 0 {
		return false
	}
	s.ids = s.ids[:0]
	for _, t := range toks {
		s.ids = append(s.ids, int(t))
	}
	text := s.opt.Decode(s.ids)
	for _, str := range s.opt.StopStrings {
		if strings.Contains(text, str) {
			return true
		}
	}
	return false
}

// pickRow is the sampler's rule for one row of logits (V = len(logits)):
// greedy when temp = 0, else the TopK/TopP truncation and the draw u
// (rng.Float64()) described at the top of this file. w and order are
// scratch of V entries.
func pickRow(logits []float32, temp float32, topK int, topP, u float64, w []float64, order []int32) (int32, float32) {
	V := len(logits)
	if temp == 0 {
		tok := int32(kernels.Argmax(logits))
		return tok, kernels.LogProbRow(logits, tok, 1)
	}
	if topP == 0 {
		topP = 1
	}
	// w[v] ∝ softmax(z/T)[v], in float64 from the float32 z/T: the loss
	// head's exps (kernels.SoftmaxWeights), summed in id order.
	w = w[:V]
	total, mx := kernels.SoftmaxWeights(w, logits, temp)
	k := V
	if topK > 0 {
		k = min(k, topK)
	}
	var tok int32
	if k == V && topP >= 1 {
		tok = drawIndexOrder(w, total, u)
	} else {
		order = order[:V]
		for v := range order {
			order[v] = int32(v)
		}
		slices.SortFunc(order, func(a, b int32) int {
			switch {
			case w[a] > w[b]:
				return -1
			case w[a] < w[b]:
				return 1
			}
			return int(a - b)
		})
		var mass float64
		for j := range k {
			mass += w[order[j]]
		}
		if topP < 1 {
			// smallest prefix whose share of the top-k mass reaches topP
			var cum float64
			n := 0
			for n < k && (n == 0 || cum < topP*mass) {
				cum += w[order[n]]
				n++
			}
			k, mass = n, cum
		}
		tok = drawOrdered(w, order[:k], mass, u)
	}
	return tok, kernels.RowLogProb(logits[tok], temp, mx, total) // LogProbRow's bits, from this pass
}

// drawIndexOrder returns the first v (in id order) whose cumulative weight
// exceeds u·total (the last positive weight if rounding runs past the end).
func drawIndexOrder(w []float64, total, u float64) int32 {
	target := u * total
	var cum float64
	last := 0
	for v, x := range w {
		if x > 0 {
			cum += x
			last = v
			if cum > target {
				return int32(v)
			}
		}
	}
	return int32(last)
}

// drawOrdered is drawIndexOrder over the tokens in order (mass = Σ w[order]).
func drawOrdered(w []float64, order []int32, mass, u float64) int32 {
	target := u * mass
	var cum float64
	last := order[0]
	for _, v := range order {
		if w[v] > 0 {
			cum += w[v]
			last = v
			if cum > target {
				return v
			}
		}
	}
	return last
}

func (s *sampler) samples() []Sample {
	out := make([]Sample, len(s.seqs))
	for i := range s.seqs {
		out[i] = s.seqs[i].out
	}
	return out
}
