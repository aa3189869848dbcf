package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// epEnv is a deterministic environment for the episode tests: after turns
// 0 and 1 it answers two tokens computed from the turn's tokens; after
// turn 2 (or when no room is left) the episode is done.
func epEnv(te TurnEnd, V int) Reply {
	if te.Turn >= 2 || te.Left <= 3 {
		return Reply{Seq: te.Seq, Done: true}
	}
	sum := 0
	for _, t := range te.Tokens {
		sum += int(t)
	}
	return Reply{Seq: te.Seq, Obs: []int32{int32(sum % V), int32((te.Turn + 5) % V)}}
}

// runEpisodes runs GenerateEpisodes with epEnv, replying either at once
// (from onTurn, on a buffered channel) or from goroutines after random
// delays.
func runEpisodes(t *testing.T, m *Model, prompts [][]int32, seeds []uint64, opt EpisodeOptions, async bool) []Episode {
	t.Helper()
	V := m.Config.VocabSize
	replies := make(chan Reply, len(prompts))
	rng := rand.New(rand.NewPCG(uint64(len(prompts)), 9))
	onTurn := func(te TurnEnd) {
		if !async {
			replies <- epEnv(te, V)
			return
		}
		delay := time.Duration(rng.IntN(3)) * time.Millisecond
		go func() {
			time.Sleep(delay)
			replies <- epEnv(te, V)
		}()
	}
	out, err := m.GenerateEpisodes(context.Background(), prompts, seeds, opt, onTurn, replies)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameEpisodes(t *testing.T, what string, got, want []Episode) {
	t.Helper()
	gs, ws := make([]Sample, len(got)), make([]Sample, len(want))
	for i := range got {
		gs[i] = got[i].Sample
	}
	for i := range want {
		ws[i] = want[i].Sample
	}
	sameSamples(t, what, gs, ws)
	for i := range want {
		if !slices.Equal(got[i].Policy, want[i].Policy) || !slices.Equal(got[i].TurnStarts, want[i].TurnStarts) {
			t.Fatalf("%s: episode %d: mask or turn starts differ", what, i)
		}
	}
}

// TestEpisodeDeterminismAndParity: episodes with observations in between
// turns give the same tokens, logprob bits, masks and turn starts whether
// replies come at once or late, in any batch (MaxBatch 0, 1, 3) and order
// of prompts; observation tokens sit where the environment put them with
// mask false and logprob 0; every policy token's logprob equals
// ForwardLogp on prompt + episode tokens bit for bit (the rollout/train
// parity of multi-turn rows).
func TestEpisodeDeterminismAndParity(t *testing.T) {
	c := smpConfig("qwen2")
	c.MaxPositionEmbeddings = 120
	m := smpModel(t, c, 5, 8)
	prompts := smpPrompts(4, 7, c.VocabSize, 3, 1, 6)
	prompts[5] = slices.Clone(prompts[0]) // a group: shared prefill
	seeds := smpSeeds(7, 30)
	opt := EpisodeOptions{SampleOptions: SampleOptions{Temperature: 0.9, MaxNewTokens: 40, StopTokens: []int{2}}, MaxTurnTokens: 8}
	ref := runEpisodes(t, m, prompts, seeds, opt, false)
	turns := 0
	for i, e := range ref {
		if len(e.Policy) != len(e.Tokens) || len(e.Logprobs) != len(e.Tokens) {
			t.Fatalf("episode %d: %d tokens, %d mask, %d logprobs", i, len(e.Tokens), len(e.Policy), len(e.Logprobs))
		}
		turns += len(e.TurnStarts)
		for k, st := range e.TurnStarts[1:] { // two observation tokens before each later turn
			if st < 2 || e.Policy[st-1] || e.Policy[st-2] || !e.Policy[st-3] || e.Logprobs[st-1] != 0 || e.Tokens[st-1] != int32((k+5)%c.VocabSize) {
				t.Fatalf("episode %d turn %d: observation not at %d: %v %v", i, k+1, st, e.Tokens, e.Policy)
			}
		}
	}
	if turns < len(prompts)+3 {
		t.Fatalf("only %d turns in %d episodes: the test does not exercise continuation", turns, len(prompts))
	}
	for _, mb := range []int{1, 3} {
		o := opt
		o.MaxBatch = mb
		sameEpisodes(t, "async, batch "+string(rune('0'+mb)), runEpisodes(t, m, prompts, seeds, o, true), ref)
	}
	rev := slices.Clone(prompts)
	rs := slices.Clone(seeds)
	slices.Reverse(rev)
	slices.Reverse(rs)
	got := runEpisodes(t, m, rev, rs, opt, true)
	slices.Reverse(got)
	sameEpisodes(t, "reversed", got, ref)

	samples := make([]Sample, len(ref))
	for i := range ref {
		samples[i] = ref[i].Sample
	}
	b, targets := concatBatch(prompts, samples)
	logp, _, err := m.ForwardLogp(b, targets, float32(opt.Temperature), true)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ref {
		for j, lp := range e.Logprobs {
			if e.Policy[j] && math.Float32bits(lp) != math.Float32bits(logp[i*b.T+len(prompts[i])-1+j]) {
				t.Fatalf("episode %d token %d: sampler logprob %v, ForwardLogp %v", i, j, lp, logp[i*b.T+len(prompts[i])-1+j])
			}
		}
	}
}

// TestEpisodeOneTurnIsGenerate: ending every episode at its first turn
// gives Generate's samples.
func TestEpisodeOneTurnIsGenerate(t *testing.T) {
	c := smpConfig("llama")
	m := smpModel(t, c, 7, 8)
	prompts := smpPrompts(5, 6, c.VocabSize, 2, 5)
	seeds := smpSeeds(6, 3)
	so := SampleOptions{Temperature: 1, MaxNewTokens: 15, StopTokens: []int{4}}
	want := generate(t, m, prompts, seeds, so)
	replies := make(chan Reply, len(prompts))
	got, err := m.GenerateEpisodes(context.Background(), prompts, seeds, EpisodeOptions{SampleOptions: so},
		func(te TurnEnd) { replies <- Reply{Seq: te.Seq, Done: true} }, replies)
	if err != nil {
		t.Fatal(err)
	}
	gs := make([]Sample, len(got))
	for i := range got {
		gs[i] = got[i].Sample
		if len(got[i].TurnStarts) != 1 || slices.Contains(got[i].Policy, false) {
			t.Fatalf("episode %d: turns %v mask %v", i, got[i].TurnStarts, got[i].Policy)
		}
	}
	sameSamples(t, "one turn", gs, want)
}

// TestEpisodeErrors: a reply that overruns the budget, a reply for a
// sequence that is not waiting and a cancelled context are errors, not
// hangs.
func TestEpisodeErrors(t *testing.T) {
	c := smpConfig("llama")
	m := smpModel(t, c, 7, 8)
	prompts := smpPrompts(5, 2, c.VocabSize, 3)
	opt := EpisodeOptions{SampleOptions: SampleOptions{Temperature: 1, MaxNewTokens: 10}, MaxTurnTokens: 3}
	for _, tc := range []struct {
		name  string
		reply func(TurnEnd) Reply
		want  string
	}{
		{"too long", func(te TurnEnd) Reply { return Reply{Seq: te.Seq, Obs: make([]int32, te.Left)} }, "leaves no room"},
		{"wrong sequence", func(te TurnEnd) Reply { return Reply{Seq: te.Seq + 7, Done: true} }, "not waiting"},
		{"bad token", func(te TurnEnd) Reply { return Reply{Seq: te.Seq, Obs: []int32{-1}} }, "outside vocabulary"},
	} {
		replies := make(chan Reply, 4)
		_, err := m.GenerateEpisodes(context.Background(), prompts, smpSeeds(2, 1), opt, func(te TurnEnd) { replies <- tc.reply(te) }, replies)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := m.GenerateEpisodes(ctx, prompts, smpSeeds(2, 1), opt, func(TurnEnd) {}, make(chan Reply))
	if err != context.DeadlineExceeded {
		t.Fatalf("never answered: err = %v, want the context's", err)
	}
}
