package rl

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/jobs/verify"
	"github.com/rljob/rljob/trainer"
)

// The model judge of reward(verifier := 'model'): the reward stage lives
// in jobs, which cannot import this package, so it calls jobs.ModelJudge,
// set here at init (as jobs.CurrentPolicy is). Its arguments are reward's
// (jobs/stage_reward.go documents them).
func init() { jobs.ModelJudge = modelJudge }

// modelJudge loads the checkpoint judge := names and scores each row:
//
//	logprob:  r = P(verdict | prompt) = exp(Σ log π(v_j | prompt, v_<j)),
//	          or with against: r = P(verdict) / (P(verdict) + P(against));
//	          correct = r >= threshold; extracted = "p=<r>"
//	generate: the judge's greedy continuation of the prompt (at most
//	          max_new_tokens, ended by EOS), scored by verifier parse
//	          against verdict: reward, correct and extracted are parse's
//
// where prompt is the template with {prompt}, {completion} and {answer}
// replaced, encoded after BOS, and the verdict is encoded alone (no BOS)
// and appended: its tokens are the ones the judge would emit, not a
// re-tokenisation of prompt+verdict. The forward is the batch-invariant
// one at temperature 1, so the scores do not depend on batching.
func modelJudge(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, rows []jobs.JudgeRow) ([]verify.Result, error) {
	dir, step, err := resolveScoringPolicy(sc, a, "judge")
	if err != nil {
		return nil, err
	}
	pol, err := loadPolicyDir(sc, a, "judge", dir, step)
	if err != nil {
		return nil, err
	}
	defer releaseModel(pol.Model) // a cached light checkpoint stays cached
	recompute := pol.Model.Recompute
	pol.Model.Recompute = true // forward only
	defer func() { pol.Model.Recompute = recompute }()
	tmpl := a.String("template")
	prompts := make([][]int32, len(rows))
	for i, r := range rows {
		text := strings.NewReplacer("{prompt}", r.Prompt, "{completion}", r.Completion, "{answer}", r.Answer).Replace(tmpl)
		prompts[i] = encodePrompt(pol.Tok.BOS(), pol.Tok.Encode(text))
		if len(prompts[i]) == 0 {
			return nil, &jobs.DataError{Pos: a.Pos("template"), Msg: fmt.Sprintf("reward: the judge prompt of rollout %q encodes to no tokens and the tokenizer has no BOS", r.RolloutID)}
		}
	}
	if a.String("mode") == "generate" {
		return judgeGenerate(ctx, sc, a, pol, rows, prompts)
	}
	return judgeLogprob(ctx, sc, a, pol, rows, prompts)
}

// judgeLogprob scores by the probability of the verdict (mode 'logprob').
func judgeLogprob(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, pol *policy, rows []jobs.JudgeRow, prompts [][]int32) ([]verify.Result, error) {
	texts := []string{jobs.ModelVerdict(a)}
	if a.Given("against") {
		texts = append(texts, a.String("against"))
	}
	var lp [][]float64 // per verdict text, per row: log P(text | prompt)
	for k, text := range texts {
		v := pol.Tok.Encode(text)
		if len(v) == 0 {
			arg := map[int]string{0: "verdict", 1: "against"}[k]
			return nil, &jobs.UsageError{Pos: a.Pos(arg), Msg: fmt.Sprintf("reward: %s %q encodes to no tokens", arg, text)}
		}
		seqs := make([][]int32, len(rows))
		for i, p := range prompts {
			seqs[i] = append(append(make([]int32, 0, len(p)+len(v)), p...), encodePrompt(-1, v)...)
			if err := checkJudgeLength(a, pol, rows[i], len(seqs[i])); err != nil {
				return nil, err
			}
		}
		l, err := continuationLogp(ctx, sc, pol.Model, seqs, prompts)
		if err != nil {
			return nil, err
		}
		lp = append(lp, l)
	}
	out := make([]verify.Result, len(rows))
	for i := range rows {
		r := math.Exp(lp[0][i])
		if len(lp) == 2 {
			r = 1 / (1 + math.Exp(lp[1][i]-lp[0][i])) // P(v) / (P(v) + P(a)), stable
		}
		out[i] = verify.Result{Reward: r, Correct: r >= a.Float("threshold"), Extracted: fmt.Sprintf("p=%.6g", r)}
	}
	return out, nil
}

// checkJudgeLength refuses a judge sequence longer than the model's
// positions.
func checkJudgeLength(a jobs.Args, pol *policy, r jobs.JudgeRow, n int) error {
	if max := pol.Model.Config.MaxPositionEmbeddings; n > max {
		return &jobs.DataError{Pos: a.Pos("template"), Column: "completion",
			Msg:  fmt.Sprintf("reward: the judge sequence of rollout %q has %d tokens, more than the judge's max_position_embeddings %d", r.RolloutID, n, max),
			Hint: "shorten the template, or judge shorter completions"}
	}
	return nil
}

// continuationLogp returns, per sequence, Σ log π(seq[t] | seq[:t]) over
// t >= len(prefix), in batches of at most logprobsBatchTokens padded
// tokens (longest first).
func continuationLogp(ctx context.Context, sc *jobs.StageCtx, model *trainer.Model, seqs, prefixes [][]int32) ([]float64, error) {
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return len(seqs[order[x]]) > len(seqs[order[y]]) })
	out := make([]float64, len(seqs))
	bar := sc.Bar("judge", int64(len(seqs)))
	defer bar.Done()
	for lo := 0; lo < len(order); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := lo + 1
		for hi < len(order) && (hi-lo+1)*len(seqs[order[lo]]) <= logprobsBatchTokens {
			hi++
		}
		b, start := padBatch(hi-lo, func(i int) ([]int32, int) { j := order[lo+i]; return seqs[j], len(prefixes[j]) })
		logp, _, err := model.ForwardLogp(b, trainer.NextTokenTargets(b, start), 1, false)
		if err != nil {
			return nil, errf("reward: judge forward: %w", err)
		}
		for i := range hi - lo {
			j := order[lo+i]
			var s float64
			for _, x := range logp[i*b.T+start[i]-1 : i*b.T+len(seqs[j])-1] {
				s += float64(x)
			}
			out[j] = s
		}
		bar.Add(int64(hi - lo))
		lo = hi
	}
	return out, nil
}

// judgeGenerate scores by the judge's greedy verdict (mode 'generate').
func judgeGenerate(ctx context.Context, sc *jobs.StageCtx, a jobs.Args, pol *policy, rows []jobs.JudgeRow, prompts [][]int32) ([]verify.Result, error) {
	parse, err := verify.Compile(a.String("parse"), verify.Options{Pattern: a.String("pattern")})
	if err != nil {
		return nil, &jobs.UsageError{Pos: a.Pos("pattern"), Msg: "reward: " + err.Error()}
	}
	opt := trainer.SampleOptions{Temperature: 0, MaxNewTokens: int(a.Int("max_new_tokens")), MaxBatch: genBatch}
	if eos := pol.Tok.EOS(); eos >= 0 {
		opt.StopTokens = []int{eos}
	}
	seeds := make([]uint64, len(rows)) // greedy: the seeds draw nothing
	for i, r := range rows {
		if err := checkJudgeLength(a, pol, r, len(prompts[i])+1); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bar := sc.Bar("judge", int64(len(rows)))
	samples, err := pol.Model.Generate(prompts, seeds, opt)
	bar.Add(int64(len(rows)))
	bar.Done()
	if err != nil {
		return nil, &jobs.UsageError{Pos: a.CallPos(), Msg: "reward: judge: " + err.Error()}
	}
	out := make([]verify.Result, len(rows))
	verdict := jobs.ModelVerdict(a)
	for i, s := range samples {
		ids := make([]int, 0, len(s.Tokens))
		for _, t := range s.Tokens {
			if int(t) != pol.Tok.EOS() {
				ids = append(ids, int(t))
			}
		}
		out[i] = parse(pol.Tok.Decode(ids), verdict)
	}
	return out, nil
}
