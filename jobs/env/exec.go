package env

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rljob/rljob/jobs/extproc"
)

// The external environment (env := 'exec:CMD'): CMD runs with sh -c in
// the job file's folder, once per rollout call, and answers every turn of
// every episode over the JSON-lines protocol of jobs/extproc
// (docs/rewards.md has the exchange):
//
//	request:  {"id": 7, "kind": "step", "payload": {"episode": "r/3/0/p1/0",
//	           "prompt_id": "p1", "sample_idx": 0, "prompt": "...", "turn": 0,
//	           "text": "<call>2+2</call>", "finish": "stop",
//	           "history": [{"text": "...", "observation": "..."}]}}
//	response: {"id": 7, "result": {"observation": "<result>4</result>",
//	           "reward": 0.0, "done": false}}
//
// observation, reward and done are optional in the result (done false,
// no reward, an empty observation); an {"id": 7, "error": "..."} answer
// fails the rollout call. Up to execEnvConcurrency turns are in flight at
// once, each bounded by rollout's turn_timeout (the Step context's
// deadline: a call past it ends its episode with status 'timeout', and
// the process keeps running); a crash, a non-JSON stdout line or a wrong
// id fails the rollout call with the process's stderr tail.
const execEnvConcurrency = 256

func init() {
	Register("exec", "an external process: exec:CMD (sh -c, JSON lines on stdin/stdout, docs/rewards.md)", newExecEnv)
}

type execEnv struct{ p *extproc.Proc }

func newExecEnv(cfg Config) (Env, error) {
	if cfg.Spec == "" {
		return nil, fmt.Errorf("exec: names no command; write env := 'exec:python3 envs/search.py'")
	}
	p, err := extproc.Start(context.Background(), extproc.Config{What: "environment", Command: cfg.Spec, Dir: cfg.Dir,
		Concurrency: execEnvConcurrency, Timeout: 24 * time.Hour, Stderr: os.Stderr})
	if err != nil {
		return nil, err
	}
	return &execEnv{p: p}, nil
}

// execStep is the payload of a "step" request.
type execStep struct {
	Episode   string     `json:"episode"`
	PromptID  string     `json:"prompt_id"`
	SampleIdx int        `json:"sample_idx"`
	Prompt    string     `json:"prompt"`
	Turn      int        `json:"turn"`
	Text      string     `json:"text"`
	Finish    string     `json:"finish"`
	History   []exchange `json:"history"`
}

type exchange struct {
	Text        string `json:"text"`
	Observation string `json:"observation"`
}

// execObservation is a "step" result.
type execObservation struct {
	Observation string   `json:"observation"`
	Reward      *float64 `json:"reward"`
	Done        bool     `json:"done"`
}

func (e *execEnv) Step(ctx context.Context, ep *Episode) (Observation, error) {
	req := execStep{Episode: ep.ID, PromptID: ep.PromptID, SampleIdx: ep.SampleIdx, Prompt: ep.Prompt,
		Turn: ep.Turn, Text: ep.Text, Finish: ep.Finish, History: make([]exchange, len(ep.History))}
	for i, x := range ep.History {
		req.History[i] = exchange(x)
	}
	raw, err := e.p.Call(ctx, "step", fmt.Sprintf("episode %q, turn %d", ep.ID, ep.Turn), req)
	if err != nil {
		return Observation{}, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var o execObservation
	if err := dec.Decode(&o); err != nil {
		return Observation{}, fmt.Errorf("result %s: %v; want {\"observation\": string, \"reward\": number, \"done\": bool} (each optional)", clip(string(raw)), err)
	}
	return Observation{Text: o.Observation, Reward: o.Reward, Done: o.Done}, nil
}

// Close ends the process (stdin closed; SIGTERM when it does not exit).
func (e *execEnv) Close() error { return e.p.Close() }

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
