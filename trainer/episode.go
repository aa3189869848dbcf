package trainer

import (
	"context"
	"fmt"
	"slices"
)

// Multi-turn generation (episodes): a sequence's policy turn ends at a stop
// token, a stop string (searched in the turn's text only) or a per-turn
// budget; the caller is told (onTurn) and answers later with observation
// token ids to append (Reply), or ends the episode. Until the reply comes
// the sequence is parked: it keeps its KV cache and its slot, and the other
// sequences go on sampling in the same batched passes. On the reply the
// turn's last token and the observation tokens run through the decoder
// together (like a prompt's prefill) and sampling continues from the
// cache. Observation tokens are given as ids and never re-derived from
// text, so the episode's tokens are exactly what the policy saw; their
// logprobs are 0 and their Policy flag false. Every sequence's logits stay
// batch-invariant, so a sequence's tokens and logprobs do not depend on the
// timing of the replies, on which sequences share a pass, nor on threads:
// only on its prompt, seed and observations.

// EpisodeOptions configure GenerateEpisodes. SampleOptions.MaxNewTokens
// bounds the whole episode after the prompt (policy and observation
// tokens); StopTokens and StopStrings end a turn.
type EpisodeOptions struct {
	SampleOptions
	// MaxTurnTokens bounds one policy turn; 0: only MaxNewTokens.
	MaxTurnTokens int
}

// TurnEnd tells the caller that a policy turn ended.
type TurnEnd struct {
	Seq    int     // the sequence (index of its prompt)
	Turn   int     // the turn, 0-based
	Tokens []int32 // the turn's tokens (a copy)
	// Finish is FinishStop (a stop token or string) or FinishLength (the
	// turn's or the episode's budget).
	Finish    string
	StopToken bool // the turn ended with one of StopTokens
	// Left is how many more tokens the episode may hold (MaxNewTokens and
	// the context length): an observation must leave room for at least one
	// policy token, so len(Obs) < Left.
	Left int
}

// Reply answers a TurnEnd: observation tokens to append and continue, or
// the end of the episode.
type Reply struct {
	Seq  int
	Obs  []int32 // appended when !Done (may be empty: the policy goes on)
	Done bool
	// Finish, when Done and not empty, replaces the last turn's finish
	// reason as the episode's.
	Finish string
}

// Episode is one multi-turn sample: Tokens are everything after the
// prompt, the policy's and the observations'; Logprobs is 0 at observation
// tokens; FinishReason is the last turn's (or the final Reply's).
type Episode struct {
	Sample
	Policy     []bool  // Policy[j]: Tokens[j] was sampled by the policy
	TurnStarts []int32 // index in Tokens where each policy turn starts
}

// episodeState is a sequence's multi-turn state.
type episodeState struct {
	turnMax    int
	turnStart  int
	turn       int
	parked     bool
	policy     []bool
	turnStarts []int32
}

// GenerateEpisodes samples one episode per prompt, batched like Generate
// (prefix sharing, MaxBatch slots: a parked sequence keeps its slot).
// onTurn is called from GenerateEpisodes' goroutine at every turn end and
// must not block; exactly one Reply per TurnEnd must then be sent on
// replies (from any goroutine; a reply sent from onTurn itself needs a
// buffered channel with room). When every running sequence waits for a
// reply, GenerateEpisodes waits, until ctx is done. The episodes do not
// depend on when replies arrive.
func (m *Model) GenerateEpisodes(ctx context.Context, prompts [][]int32, seeds []uint64, opt EpisodeOptions, onTurn func(TurnEnd), replies <-chan Reply) ([]Episode, error) {
	if opt.MaxTurnTokens < 0 {
		return nil, fmt.Errorf("trainer: generate: max turn tokens %d must be ≥ 0", opt.MaxTurnTokens)
	}
	if onTurn == nil || replies == nil {
		return nil, fmt.Errorf("trainer: generate episodes: onTurn and replies are required")
	}
	s, err := m.newSampler(prompts, seeds, opt.SampleOptions)
	if err != nil {
		return nil, err
	}
	for i := range s.seqs {
		s.seqs[i].ep = &episodeState{turnMax: opt.MaxTurnTokens, turnStarts: []int32{0}}
	}
	if err := m.generate(ctx, s, prompts, onTurn, replies); err != nil {
		return nil, err
	}
	out := make([]Episode, len(s.seqs))
	for i := range s.seqs {
		q := &s.seqs[i]
		out[i] = Episode{Sample: q.out, Policy: q.ep.policy, TurnStarts: q.ep.turnStarts}
	}
	return out, nil
}

// turnEnd describes sequence i's finished turn.
func (s *sampler) turnEnd(i int) TurnEnd {
	q := &s.seqs[i]
	toks := q.out.Tokens[q.ep.turnStart:]
	last := toks[len(toks)-1]
	return TurnEnd{Seq: i, Turn: q.ep.turn, Tokens: slices.Clone(toks), Finish: q.out.FinishReason,
		StopToken: q.out.FinishReason == FinishStop && s.stopT[last], Left: q.maxNew - len(q.out.Tokens)}
}

// generate is the batched decoding loop of Generate and GenerateEpisodes.
// Each pass runs one token per sampling sequence, the prefill of the
// sequences that start, and the last turn token plus observation of the
// sequences whose reply came; a sequence done (or, with onTurn, at a turn
// end) leaves the pass. At most opt.MaxBatch sequences hold a cache at
// once; a finished sequence's slot goes to the next prompt in order. A
// prompt that occurs several times (GRPO groups) is prefilled once: its
// cache and logits are kept until its last sequence has started.
func (m *Model) generate(ctx context.Context, s *sampler, prompts [][]int32, onTurn func(TurnEnd), replies <-chan Reply) error {
	B, V := len(prompts), m.Config.VocabSize
	slots := B
	if s.opt.MaxBatch > 0 {
		slots = min(B, s.opt.MaxBatch)
	}
	tmax := 0
	keys := make([]string, B)
	left := make(map[string]int) // sequences not yet started, per prompt
	for i, p := range prompts {
		tmax = max(tmax, len(p)+s.seqs[i].maxNew)
		keys[i] = tokensKey(p)
		left[keys[i]]++
	}
	type prefix struct {
		cache  kvCache
		logits []float32 // kept by the backend
	}
	stored := make(map[string]*prefix) // prefilled prompts that later sequences share
	var retired [][]float32            // stored logits whose last sequence started: forgotten once sampled
	defer func() {                     // the snapshots still held when generate ends early
		for _, st := range stored {
			st.cache.release()
			retired = append(retired, st.logits)
		}
		for _, l := range retired {
			m.be.Forget(l)
		}
		s.release()
	}()
	type ready struct {
		seq    int
		logits []float32 // (V) next-token logits
	}
	d := newDecoder(m, B, tmax, decoderMaxRows)
	defer d.close()
	logits := make([]float32, slots*V)        // one row per sequence at most per pass
	m.be.Keep(logits, "the sampler's logits") // sampled where the head wrote them (sampler.steps)
	defer m.be.Forget(logits)
	var cur, nxt []ready
	var rows []decodeRow
	var want []bool
	var wantSeq, fresh, curSeq []int
	var curLogits [][]float32
	pending, active, parked := 0, 0, 0
	// resume handles a reply: the end of sequence i, or its last token and
	// observation into this pass.
	resume := func(rp Reply) error {
		if rp.Seq < 0 || rp.Seq >= B || s.seqs[rp.Seq].ep == nil || !s.seqs[rp.Seq].ep.parked {
			return fmt.Errorf("trainer: generate episodes: reply for sequence %d, which is not waiting for one", rp.Seq)
		}
		i := rp.Seq
		q := &s.seqs[i]
		q.ep.parked = false
		parked--
		if rp.Done {
			if rp.Finish != "" {
				q.out.FinishReason = rp.Finish
			}
			d.release(i)
			active--
			return nil
		}
		n := len(q.out.Tokens)
		if len(rp.Obs) >= q.maxNew-n {
			return fmt.Errorf("trainer: generate episodes: sequence %d: observation of %d tokens leaves no room for the policy (%d tokens left)", i, len(rp.Obs), q.maxNew-n)
		}
		base := int32(len(prompts[i]) + n - 1)
		rows = append(rows, decodeRow{seq: i, pos: base, tok: q.out.Tokens[n-1]})
		want = append(want, len(rp.Obs) == 0)
		for k, t := range rp.Obs {
			if t < 0 || int(t) >= s.V {
				return fmt.Errorf("trainer: generate episodes: sequence %d: observation token %d outside vocabulary [0,%d)", i, t, s.V)
			}
			rows = append(rows, decodeRow{seq: i, pos: base + 1 + int32(k), tok: t})
			want = append(want, k == len(rp.Obs)-1)
		}
		wantSeq = append(wantSeq, i)
		q.out.Tokens = append(q.out.Tokens, rp.Obs...)
		q.out.Logprobs = append(q.out.Logprobs, make([]float32, len(rp.Obs))...)
		q.ep.policy = append(q.ep.policy, make([]bool, len(rp.Obs))...)
		q.ep.turn++
		q.ep.turnStart = len(q.out.Tokens)
		q.ep.turnStarts = append(q.ep.turnStarts, int32(q.ep.turnStart))
		q.out.FinishReason, q.done = "", false
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, want, wantSeq, fresh, nxt = rows[:0], want[:0], wantSeq[:0], fresh[:0], nxt[:0]
		curSeq, curLogits = curSeq[:0], curLogits[:0]
		for _, r := range cur {
			curSeq, curLogits = append(curSeq, r.seq), append(curLogits, r.logits)
		}
		toks, dones := s.steps(curSeq, curLogits) // one backend Sample for the pass's sequences
		for _, l := range retired {
			m.be.Forget(l)
		}
		retired = retired[:0]
		for j, r := range cur {
			tok, done := toks[j], dones[j]
			switch {
			case done && onTurn != nil:
				s.seqs[r.seq].ep.parked = true
				parked++
				onTurn(s.turnEnd(r.seq))
			case done:
				d.release(r.seq)
				active--
			default:
				q := &s.seqs[r.seq]
				rows = append(rows, decodeRow{seq: r.seq, pos: int32(len(prompts[r.seq]) + len(q.out.Tokens) - 1), tok: tok})
				want = append(want, true)
				wantSeq = append(wantSeq, r.seq)
			}
		}
		// Replies: take those that have arrived; wait for one when nothing
		// else can run.
	drain:
		for parked > 0 {
			idle := len(rows) == 0 && !(active < slots && pending < B)
			var rp Reply
			if idle {
				select {
				case rp = <-replies:
				case <-ctx.Done():
					return ctx.Err()
				}
			} else {
				select {
				case rp = <-replies:
				default:
					break drain
				}
			}
			if err := resume(rp); err != nil {
				return err
			}
		}
		// Refill the free slots with the next sequences, in order.
		for ; active < slots && pending < B; pending++ {
			i, p := pending, prompts[pending]
			k := keys[i]
			left[k]--
			active++
			d.start(i, len(p), len(p)+s.seqs[i].maxNew)
			if st := stored[k]; st != nil {
				d.restore(i, st.cache)
				nxt = append(nxt, ready{i, st.logits})
				if left[k] == 0 {
					st.cache.release()
					retired = append(retired, st.logits) // its row is sampled next pass
					delete(stored, k)
				}
				continue
			}
			for t, tok := range p {
				rows = append(rows, decodeRow{seq: i, pos: int32(t), tok: tok})
				want = append(want, t == len(p)-1)
			}
			wantSeq = append(wantSeq, i)
			if left[k] > 0 {
				fresh = append(fresh, i)
			}
		}
		if len(rows) == 0 && len(nxt) == 0 {
			return backendErr(m.be, "sampling")
		}
		if err := d.run(rows, want, logits); err != nil {
			return fmt.Errorf("trainer: generate: %w", err)
		}
		for j, i := range wantSeq {
			nxt = append(nxt, ready{i, logits[j*V : (j+1)*V]})
		}
		for j, i := range wantSeq {
			if len(fresh) > 0 && fresh[0] == i {
				fresh = fresh[1:]
				// Sequences of one prompt that started in the same pass
				// were all prefilled (the same bits): one snapshot is kept.
				if stored[keys[i]] == nil {
					stored[keys[i]] = &prefix{cache: d.snapshot(i, len(prompts[i])), logits: m.keptRow(logits[j*V:(j+1)*V], "a shared prompt's logits")}
				}
			}
		}
		cur, nxt = nxt, cur
	}
}
