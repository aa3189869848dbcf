package rl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/jobs/env"
	"github.com/rljob/rljob/trainer"
)

// Multi-turn rollouts (docs/episodes.md): with env := set, each sample is an
// episode of up to max_turns policy turns. A turn ends at EOS (or the chat
// end-of-turn token), a stop (stop :=, stop_tokens :=) or max_turn_tokens;
// the environment then answers (jobs/env), and unless it says done, the
// episode has used max_turns, or the observation does not fit the episode's
// budget (max_new_tokens: policy and observation tokens), the observation's
// token ids are appended and the policy goes on from its KV cache.

// Episode finish reasons (rollouts.finish_reason) besides 'stop' and
// 'length', and turn statuses (turns.status).
const (
	finishMaxTurns = "max_turns"
	finishTimeout  = "timeout"

	statusContinue = "continue" // the observation was appended; the policy goes on
	statusDone     = "done"     // the environment ended the episode
	statusMaxTurns = "max_turns"
	statusLength   = "length" // no room left for the observation and a policy token
	statusTimeout  = "timeout"
)

// episodeArgs are the rollout arguments that exist only with env.
var episodeArgs = []string{"max_turns", "max_turn_tokens", "turn_timeout", "timeout_reward", "turns"}

// turnRow is one row of the turns table.
type turnRow struct {
	turn        int
	text        string
	finish      string // how the policy's turn ended: env.FinishStop, FinishEOS, FinishLength
	observation *string
	reward      *float64
	status      string
	latency     *float64 // seconds of the environment call
	policyToks  int
	obsToks     int
}

// episodeOut is the multi-turn part of a rollout row.
type episodeOut struct {
	ep    trainer.Episode
	turns []turnRow
}

// episodeRunner drives the episodes of one rollout call.
type episodeRunner struct {
	sc        *jobs.StageCtx
	a         jobs.Args
	env       env.Env
	name      string // env := value, for errors
	decode    func([]int) string
	encMu     sync.Mutex
	encode    func(string) []int
	userStops []int // stop_tokens (a turn ending on one is 'stop', not 'eos')
	maxTurns  int
	timeout   time.Duration
	toReward  *float64

	errMu  sync.Mutex
	err    error
	cancel context.CancelFunc
}

func newEpisodeRunner(sc *jobs.StageCtx, a jobs.Args, pol *policy, userStops []int) (*episodeRunner, error) {
	e, err := env.Open(a.String("env"), env.Config{Dir: sc.JobDir, Engine: sc.Engine})
	if err != nil {
		return nil, &jobs.UsageError{Pos: a.Pos("env"), Msg: "rollout: " + err.Error(),
			Hint: "env := 'calculator', 'sql:MACRO' or another registered environment (docs/episodes.md)"}
	}
	r := &episodeRunner{sc: sc, a: a, env: e, name: a.String("env"), decode: pol.Tok.Decode, encode: pol.Tok.Encode,
		userStops: userStops, maxTurns: int(a.Int("max_turns")),
		timeout: time.Duration(a.Float("turn_timeout") * float64(time.Second))}
	if a.Has("timeout_reward") {
		v := a.Float("timeout_reward")
		r.toReward = &v
	}
	return r, nil
}

// run samples the episodes of outs (filling outs[i].episode) in one
// batched GenerateEpisodes call.
func (r *episodeRunner) run(ctx context.Context, model *trainer.Model, opt trainer.EpisodeOptions, outs []rolloutOut) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	ps := make([][]int32, len(outs))
	seeds := make([]uint64, len(outs))
	for i := range outs {
		ps[i], seeds[i] = outs[i].promptToks, outs[i].seed
		outs[i].episode = &episodeOut{}
	}
	replies := make(chan trainer.Reply, len(outs))
	var wg sync.WaitGroup
	onTurn := func(te trainer.TurnEnd) {
		o := &outs[te.Seq]
		row, ep := r.turnOf(o, te)
		if te.Finish == trainer.FinishLength && te.Left == 0 { // the episode's budget is spent: no call
			row.status = statusLength
			o.episode.turns = append(o.episode.turns, row)
			replies <- trainer.Reply{Seq: te.Seq, Done: true}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies <- r.answer(ctx, o, row, ep, te)
		}()
	}
	eps, err := model.GenerateEpisodes(ctx, ps, seeds, opt, onTurn, replies)
	cancel()
	wg.Wait()
	if e := r.firstErr(); e != nil {
		return e
	}
	if err != nil {
		return err
	}
	for i := range outs {
		outs[i].episode.ep = eps[i]
		outs[i].sample = eps[i].Sample
	}
	return nil
}

// turnOf describes the turn that ended: its turns row so far and what the
// environment sees.
func (r *episodeRunner) turnOf(o *rolloutOut, te trainer.TurnEnd) (turnRow, *env.Episode) {
	toks := te.Tokens
	finish := env.FinishStop
	switch {
	case te.Finish == trainer.FinishLength:
		finish = env.FinishLength
	case te.StopToken && !slices.Contains(r.userStops, int(toks[len(toks)-1])):
		finish = env.FinishEOS
		toks = toks[:len(toks)-1] // EOS is a token, not text
	}
	ids := make([]int, len(toks))
	for i, t := range toks {
		ids[i] = int(t)
	}
	row := turnRow{turn: te.Turn, text: r.decode(ids), finish: finish, policyToks: len(te.Tokens)}
	ep := &env.Episode{ID: rolloutID(r.sc.Run, r.sc.Step, r.sc.Call, o.promptID, o.sampleIdx), PromptID: o.promptID,
		SampleIdx: int(o.sampleIdx), Prompt: o.prompt, Turn: te.Turn, Text: row.text, Finish: finish}
	for _, t := range o.episode.turns {
		x := env.Exchange{Text: t.text}
		if t.observation != nil {
			x.Observation = *t.observation
		}
		ep.History = append(ep.History, x)
	}
	return row, ep
}

// answer calls the environment for one turn (bounded by turn_timeout),
// records the turn and returns the reply for the sampler.
func (r *episodeRunner) answer(ctx context.Context, o *rolloutOut, row turnRow, ep *env.Episode, te trainer.TurnEnd) trainer.Reply {
	done := trainer.Reply{Seq: te.Seq, Done: true}
	t0 := time.Now()
	obs, err := r.step(ctx, ep)
	lat := time.Since(t0).Seconds()
	row.latency = &lat
	switch {
	case ctx.Err() != nil: // the call is cancelled (an interrupt, another episode's error)
		return done
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		row.status, row.reward = statusTimeout, r.toReward
		done.Finish = finishTimeout
		o.episode.turns = append(o.episode.turns, row)
		return done
	case err != nil:
		r.fail(&jobs.DataError{Pos: r.a.Pos("env"),
			Msg: fmt.Sprintf("rollout: environment %q: episode %s (prompt_id %q, sample_idx %d), turn %d", r.name, ep.ID, ep.PromptID, ep.SampleIdx, ep.Turn),
			Err: err, Hint: "nothing was committed: fix the environment and run the job again (it resumes at this call)"})
		return done
	}
	row.observation, row.reward = &obs.Text, obs.Reward
	var ids []int32
	switch {
	case obs.Done:
		row.status = statusDone
	case te.Turn+1 >= r.maxTurns:
		row.status, done.Finish = statusMaxTurns, finishMaxTurns
	default:
		r.encMu.Lock()
		ids = encodePrompt(-1, r.encode(obs.Text))
		r.encMu.Unlock()
		if len(ids) >= te.Left {
			row.status, done.Finish = statusLength, trainer.FinishLength
			ids = nil
		} else {
			row.status = statusContinue
		}
	}
	row.obsToks = len(ids)
	o.episode.turns = append(o.episode.turns, row)
	if row.status != statusContinue {
		return done
	}
	return trainer.Reply{Seq: te.Seq, Obs: ids}
}

// step runs env.Step under the turn timeout; a Step that ignores its
// context is abandoned at the deadline.
func (r *episodeRunner) step(ctx context.Context, ep *env.Episode) (env.Observation, error) {
	tctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	type result struct {
		obs env.Observation
		err error
	}
	ch := make(chan result, 1)
	go func() {
		obs, err := r.env.Step(tctx, ep)
		ch <- result{obs, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil && tctx.Err() != nil {
			return res.obs, tctx.Err()
		}
		return res.obs, res.err
	case <-tctx.Done():
		return env.Observation{}, tctx.Err()
	}
}

func (r *episodeRunner) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.cancel()
}

func (r *episodeRunner) firstErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// parseStopTokens reads stop_tokens := '151645, 151643'.
func parseStopTokens(a jobs.Args, vocab int) ([]int, error) {
	if !a.Has("stop_tokens") {
		return nil, nil
	}
	var ids []int
	for _, f := range strings.Split(a.String("stop_tokens"), ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || id < 0 || id >= vocab {
			return nil, &jobs.UsageError{Pos: a.Pos("stop_tokens"), Msg: fmt.Sprintf("rollout: stop_tokens: %q is not a token id in [0,%d)", strings.TrimSpace(f), vocab),
				Hint: "stop_tokens := '151645' (comma-separated token ids of the policy's tokenizer)"}
		}
		ids = append(ids, id)
	}
	return ids, nil
}
