package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rljob/rljob/jobs/extproc"
	"github.com/rljob/rljob/jobs/verify"
)

// JudgeRow is one completion for reward to score.
type JudgeRow struct {
	RolloutID, Prompt, Completion, Answer string
}

// ModelJudge scores rows for reward(verifier := 'model') with the
// checkpoint that argument judge names, as reward's spec documents (modes
// logprob and generate). Checkpoints and the trainer are jobs/rl's, which
// this package cannot import, so jobs/rl sets it at init (as it sets
// CurrentPolicy); in a binary without jobs/rl it stays nil and verifier
// 'model' is a usage error.
var ModelJudge func(ctx context.Context, sc *StageCtx, a Args, rows []JudgeRow) ([]verify.Result, error)

// judgeFails counts the judgements that the on_error policy turned into
// error_reward rows.
type judgeFails struct {
	judged           bool // an exec: judge ran (the counts are metrics)
	timeouts, errors int
}

// scorer scores rows under the verifier name name (the rewards.verifier
// value).
type scorer struct {
	name  string
	score func(ctx context.Context, sc *StageCtx, a Args, rows []JudgeRow) ([]verify.Result, judgeFails, error)
}

// rewardName is the rewards.verifier value of a call: name :=, else
// 'model:<judge>' for the model judge, else the verifier as written.
func rewardName(a Args) string {
	switch {
	case a.Given("name"):
		return a.String("name")
	case a.String("verifier") == "model":
		return "model:" + a.String("judge")
	}
	return a.String("verifier")
}

// newScorer picks the scorer of a.String("verifier").
func newScorer(sc *StageCtx, a Args) (*scorer, error) {
	v, name := a.String("verifier"), rewardName(a)
	switch {
	case v == "model":
		if ModelJudge == nil {
			return nil, &UsageError{Pos: a.Pos("verifier"), Msg: "reward: verifier 'model' needs the trainer (jobs/rl), which this binary does not include"}
		}
		return &scorer{name, func(ctx context.Context, sc *StageCtx, a Args, rows []JudgeRow) ([]verify.Result, judgeFails, error) {
			res, err := ModelJudge(ctx, sc, a, rows)
			return res, judgeFails{}, err
		}}, nil
	case strings.HasPrefix(v, "exec:"):
		return &scorer{name, execJudge}, nil
	}
	f, err := verify.Compile(v, verify.Options{Pattern: a.String("pattern")})
	if err != nil {
		return nil, &UsageError{Pos: a.Pos("pattern"), Msg: "reward: " + err.Error()}
	}
	return &scorer{name, func(_ context.Context, sc *StageCtx, _ Args, rows []JudgeRow) ([]verify.Result, judgeFails, error) {
		out := make([]verify.Result, len(rows))
		for i, r := range rows {
			out[i] = f(r.Completion, r.Answer)
		}
		return out, judgeFails{}, nil
	}}, nil
}

// judgeRequest is the payload of an exec: judge's "judge" request.
type judgeRequest struct {
	RolloutID  string `json:"rollout_id"`
	Prompt     string `json:"prompt"`
	Completion string `json:"completion"`
	Answer     string `json:"answer"`
}

// judgeResult is an exec: judge's result: reward is required, correct
// defaults to reward > 0, extracted to "".
type judgeResult struct {
	Reward    *float64 `json:"reward"`
	Correct   *bool    `json:"correct"`
	Extracted string   `json:"extracted"`
}

// execJudge scores rows with the external judge of verifier 'exec:CMD'
// (jobs/extproc): started once for the call in the job file's folder,
// `concurrency` judgements in flight, each bounded by `timeout` seconds.
// A timed-out judgement, or one the judge answers with "error", becomes
// an error_reward row (extracted "timeout: ..." / "error: ...") under
// on_error := 'reward', and fails the call under on_error := 'fail'; a
// crash, a protocol error or a malformed result always fails it. Nothing
// is committed on failure.
func execJudge(ctx context.Context, sc *StageCtx, a Args, rows []JudgeRow) ([]verify.Result, judgeFails, error) {
	command := strings.TrimSpace(strings.TrimPrefix(a.String("verifier"), "exec:"))
	workers := int(a.Int("concurrency"))
	p, err := extproc.Start(ctx, extproc.Config{What: "judge", Command: command, Dir: commandDir(sc), Env: judgeEnv(sc),
		Concurrency: workers, Timeout: time.Duration(a.Float("timeout") * float64(time.Second)), Stderr: os.Stderr})
	if err != nil {
		return nil, judgeFails{}, fmt.Errorf("%s: reward: %w (nothing committed)", sc.Pos, err)
	}
	results := make([]verify.Result, len(rows))
	errs := make([]error, len(rows))
	bar := sc.Bar("reward", int64(len(rows)))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(workers, len(rows)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], errs[i] = judgeOne(ctx, p, rows[i])
				bar.Add(1)
			}
		}()
	}
	for i := range rows {
		next <- i
	}
	close(next)
	wg.Wait()
	bar.Done()
	if cerr := p.Close(); cerr != nil {
		sc.Log.Warn().Err(cerr).Msg("reward: closing the judge")
	}
	fails := judgeFails{judged: true}
	for i, err := range errs {
		if err == nil {
			continue
		}
		var pe *extproc.Error
		policy := errors.As(err, &pe) && (pe.Kind == extproc.Timeout || pe.Kind == extproc.Remote)
		if !policy || a.String("on_error") == "fail" {
			return nil, fails, fmt.Errorf("%s: reward: %w (nothing committed)", sc.Pos, err)
		}
		if pe.Kind == extproc.Timeout {
			fails.timeouts++
		} else {
			fails.errors++
		}
		results[i] = verify.Result{Reward: a.Float("error_reward"), Extracted: pe.Kind.String() + ": " + pe.Msg}
	}
	if fails.timeouts+fails.errors > 0 {
		sc.Log.Warn().Int("timeouts", fails.timeouts).Int("errors", fails.errors).Float64("error_reward", a.Float("error_reward")).
			Msg("reward: judgements that failed were recorded with error_reward")
	}
	return results, fails, nil
}

// judgeOne asks the judge about one row.
func judgeOne(ctx context.Context, p *extproc.Proc, r JudgeRow) (verify.Result, error) {
	raw, err := p.Call(ctx, "judge", "rollout_id "+strconv.Quote(r.RolloutID), judgeRequest(r))
	if err != nil {
		return verify.Result{}, err
	}
	var jr judgeResult
	if err := json.Unmarshal(raw, &jr); err != nil || jr.Reward == nil {
		return verify.Result{}, fmt.Errorf("judge answered rollout_id %q with result %s: want an object {\"reward\": number, \"correct\": bool (optional), \"extracted\": string (optional)}",
			r.RolloutID, clipValue(string(raw)))
	}
	res := verify.Result{Reward: *jr.Reward, Correct: *jr.Reward > 0, Extracted: jr.Extracted}
	if jr.Correct != nil {
		res.Correct = *jr.Correct
	}
	return res, nil
}

// commandDir is where external commands run: the job file's folder.
func commandDir(sc *StageCtx) string {
	if sc.JobDir != "" {
		return sc.JobDir
	}
	d, _ := os.Getwd()
	return d
}

// judgeEnv is the judge's environment: rljob's, plus the call's run,
// step, shard and seed as exec passes them.
func judgeEnv(sc *StageCtx) []string {
	return append(os.Environ(),
		"RLJOB_RUN="+sc.Run,
		"RLJOB_STEP="+strconv.FormatInt(sc.Step, 10),
		"RLJOB_SHARD="+strconv.Itoa(sc.Shard),
		"RLJOB_NUM_SHARDS="+strconv.Itoa(sc.NumShards),
		"RLJOB_SEED="+strconv.FormatInt(sc.SeedFor(), 10),
		"RLJOB_LAKE="+sc.Lake.Root,
	)
}
