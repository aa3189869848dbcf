// Package env holds the environments of multi-turn rollouts (docs/episodes.md):
// what answers a policy turn with an observation, an optional reward and
// whether the episode is done.
//
// An episode: the policy samples a turn until EOS, a stop (rollout's
// stop :=) or its token budget; the rollout stage then calls the
// environment's Step with the episode so far; unless the observation says
// Done (or the episode has used max_turns or its token budget), the
// observation text is tokenised once (no BOS) and appended to the episode's
// tokens, and the policy samples its next turn from the KV cache. Token
// ids are never re-derived from text.
//
// Adding an environment: write a type with Step and Close, a Factory that
// builds it from a Config (Spec is the text after "name:" in
// env := 'name:spec'), and register it from an init function of a file in
// this package (or of a package the rljob binary imports):
//
//	func init() { env.Register("myenv", newMyEnv) }
//
// Step is called concurrently for different episodes (at most one call per
// episode at a time); it must honour ctx (the rollout's turn_timeout is its
// deadline; a call that overruns it is abandoned, recorded with status
// 'timeout' and ends its episode). An error from Step fails the rollout
// call: nothing is committed, and the error is reported with the
// environment's name, the episode (rollout_id, prompt_id, sample_idx) and
// the turn, so Step need not repeat them. Close is called once, after the
// last Step of the stage call.
package env

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	rsql "github.com/rljob/rljob/sql"
)

// Env answers policy turns.
type Env interface {
	// Step returns the environment's answer to the turn that just ended
	// (ep.Turn, ep.Text).
	Step(ctx context.Context, ep *Episode) (Observation, error)
	// Close releases the environment (a process, a connection).
	Close() error
}

// Episode is what Step sees: the episode's identity, its prompt, the turn
// that just ended and the earlier exchanges.
type Episode struct {
	ID        string // rollout_id of the episode's row in the rollouts table
	PromptID  string
	SampleIdx int
	Prompt    string // the prompt text the policy saw (a chat prompt rendered by the template)
	Turn      int    // the policy turn that just ended, 0-based
	// Text is that turn's text: its decoded tokens, the stop string
	// included, an ending EOS (or chat end-of-turn token) excluded.
	Text string
	// Finish is how the turn ended: FinishStop (a stop string or stop token
	// of stop := / stop_tokens :=), FinishEOS (EOS or the chat template's
	// end-of-turn token) or FinishLength (the per-turn token budget).
	Finish  string
	History []Exchange // turns 0 .. Turn−1
}

// How a policy turn ended (Episode.Finish).
const (
	FinishStop   = "stop"
	FinishEOS    = "eos"
	FinishLength = "length"
)

// Exchange is one earlier turn: the policy's text and the observation that
// followed it.
type Exchange struct {
	Text        string
	Observation string
}

// Observation is an environment's answer to one turn.
type Observation struct {
	// Text is appended to the episode (tokenised once, no BOS) unless Done;
	// it is recorded in the turns table either way.
	Text string
	// Reward, when set, is the turn's reward (turns.reward).
	Reward *float64
	// Done ends the episode.
	Done bool
}

// Config is what a Factory gets.
type Config struct {
	Name string // the registered name
	// Spec is the text after "name:" in env := 'name:spec' ("" for a bare
	// name).
	Spec string
	// Dir is the job file's folder: relative paths in Spec resolve
	// against it.
	Dir string
	// Engine is the stage's DuckDB engine (the job's macros and tables,
	// the lake's views). An environment that queries it must serialise its
	// calls.
	Engine *rsql.Engine
}

// Factory builds an environment for one stage call.
type Factory func(cfg Config) (Env, error)

var (
	mu        sync.Mutex
	factories = map[string]registered{}
)

type registered struct {
	f   Factory
	doc string
}

// Register makes name usable as env := 'name' or 'name:spec'; doc is one
// line for error messages and docs. It panics on a duplicate or a name
// with ':' or spaces.
func Register(name, doc string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" || strings.ContainsAny(name, ": \t\n") {
		panic(fmt.Sprintf("env: bad environment name %q", name))
	}
	if _, dup := factories[name]; dup {
		panic(fmt.Sprintf("env: environment %q registered twice", name))
	}
	factories[name] = registered{f, doc}
}

// Names lists the registered environments with their docs, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for n, r := range factories {
		out = append(out, n+" ("+r.doc+")")
	}
	sort.Strings(out)
	return out
}

// Parse splits an env := value into its name and spec.
func Parse(value string) (name, spec string) {
	name, spec, _ = strings.Cut(strings.TrimSpace(value), ":")
	return strings.TrimSpace(name), strings.TrimSpace(spec)
}

// Known reports whether value names a registered environment.
func Known(value string) bool {
	name, _ := Parse(value)
	mu.Lock()
	defer mu.Unlock()
	_, ok := factories[name]
	return ok
}

// Open builds the environment value names (env := value), with cfg's Dir
// and Engine.
func Open(value string, cfg Config) (Env, error) {
	cfg.Name, cfg.Spec = Parse(value)
	mu.Lock()
	r, ok := factories[cfg.Name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown environment %q (known: %s)", cfg.Name, strings.Join(Names(), ", "))
	}
	e, err := r.f(cfg)
	if err != nil {
		return nil, fmt.Errorf("environment %q: %w", value, err)
	}
	return e, nil
}
