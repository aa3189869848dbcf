package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// A Stage is a unit of Go work that a job file runs with
// `CALL <name>(arg := value, ...)`. It is registered by name (Register) and
// declares its arguments, so the runner can check every call of a job before
// any stage runs and `rljob stages` can document it.
//
// Run reads its inputs through sc.Engine, writes its outputs through
// sc.Commit (one commit unit per output table for (run, step, call, shard)),
// and returns a one-row summary that the runner logs. It must not commit
// anything when it returns an error.
type Stage interface {
	Spec() StageSpec
	Run(ctx context.Context, sc *StageCtx, args Args) (Summary, error)
}

// StageSpec describes a stage to the runner and to `rljob stages`.
type StageSpec struct {
	Name string
	Doc  string // one paragraph: what it reads, writes and does
	Args []ArgSpec
	// Sharded says the stage handles only rows with
	// hash(prompt_id) % num_shards = shard under --shard i/n. Stages that are
	// not sharded run on shard 0 only and are skipped on the others.
	Sharded bool
	// Outputs names the lake tables a call commits to, given its arguments.
	// On resume a call whose every output unit (run, step, call, shard) is
	// committed is skipped.
	Outputs func(a Args) []string
	// Check, if set, validates the arguments together (for example "exactly
	// one of query and table") after each has been type-checked. It returns a
	// user-facing message, or "" when the arguments are fine.
	Check func(a Args) (msg, hint string)
}

// ArgType is the declared type of a stage argument.
type ArgType string

// Argument types. A table is a string or bare identifier naming a table or
// view; a query is a string holding a SELECT (or any query DuckDB accepts in
// FROM (...)). An int literal is accepted where a float is declared.
const (
	TypeString ArgType = "string"
	TypeInt    ArgType = "int"
	TypeFloat  ArgType = "float"
	TypeBool   ArgType = "bool"
	TypeTable  ArgType = "table"
	TypeQuery  ArgType = "query"
)

// ArgSpec declares one stage argument. Default is a Go value of the type
// (string, int64, float64 or bool) or nil for "none"; DefaultDoc, when set,
// is shown instead of Default by `rljob stages` (for defaults computed at run
// time, such as "this step's rollouts"). Enum, when set, lists the accepted
// values of a string argument.
type ArgSpec struct {
	Name       string
	Type       ArgType
	Default    any
	DefaultDoc string
	Required   bool
	Enum       []string
	Doc        string
}

// DefaultString renders the default for documentation.
func (a ArgSpec) DefaultString() string {
	switch {
	case a.DefaultDoc != "":
		return a.DefaultDoc
	case a.Required:
		return "(required)"
	case a.Default == nil:
		return "(none)"
	}
	if s, ok := a.Default.(string); ok {
		return "'" + s + "'"
	}
	return fmt.Sprint(a.Default)
}

// Registry maps stage names to stages. The zero value is empty and ready to
// use; DefaultRegistry holds the built-in stages and is what the runner uses
// unless told otherwise.
type Registry struct {
	mu     sync.RWMutex
	stages map[string]Stage
}

// DefaultRegistry holds every stage registered with Register.
var DefaultRegistry = &Registry{}

// Register adds s to DefaultRegistry; it panics if the name is taken or the
// spec is malformed (a program bug, found at init).
func Register(s Stage) { DefaultRegistry.Register(s) }

// Register adds s; it panics on a duplicate name or a malformed spec.
func (r *Registry) Register(s Stage) {
	sp := s.Spec()
	if err := checkSpec(sp); err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stages == nil {
		r.stages = map[string]Stage{}
	}
	if _, dup := r.stages[sp.Name]; dup {
		panic(fmt.Sprintf("jobs: stage %q registered twice", sp.Name))
	}
	r.stages[sp.Name] = s
}

// Lookup returns the stage registered under name (case-insensitive, like
// DuckDB's function names).
func (r *Registry) Lookup(name string) (Stage, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.stages[strings.ToLower(name)]
	return s, ok
}

// Stages returns every registered stage, sorted by name.
func (r *Registry) Stages() []Stage {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Stage, 0, len(r.stages))
	for _, s := range r.stages {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec().Name < out[j].Spec().Name })
	return out
}

// Names returns the registered stage names, sorted.
func (r *Registry) Names() []string {
	var ns []string
	for _, s := range r.Stages() {
		ns = append(ns, s.Spec().Name)
	}
	return ns
}

func checkSpec(sp StageSpec) error {
	if sp.Name == "" || sp.Name != strings.ToLower(sp.Name) {
		return fmt.Errorf("jobs: stage name %q must be non-empty lower case", sp.Name)
	}
	if sp.Outputs == nil {
		return fmt.Errorf("jobs: stage %q has no Outputs", sp.Name)
	}
	seen := map[string]bool{}
	for _, a := range sp.Args {
		if seen[a.Name] {
			return fmt.Errorf("jobs: stage %q declares argument %q twice", sp.Name, a.Name)
		}
		seen[a.Name] = true
		switch a.Type {
		case TypeString, TypeTable, TypeQuery:
			if _, ok := a.Default.(string); a.Default != nil && !ok {
				return fmt.Errorf("jobs: stage %q argument %q: default %v is not a string", sp.Name, a.Name, a.Default)
			}
		case TypeInt:
			if _, ok := a.Default.(int64); a.Default != nil && !ok {
				return fmt.Errorf("jobs: stage %q argument %q: default %v is not an int64", sp.Name, a.Name, a.Default)
			}
		case TypeFloat:
			if _, ok := a.Default.(float64); a.Default != nil && !ok {
				return fmt.Errorf("jobs: stage %q argument %q: default %v is not a float64", sp.Name, a.Name, a.Default)
			}
		case TypeBool:
			if _, ok := a.Default.(bool); a.Default != nil && !ok {
				return fmt.Errorf("jobs: stage %q argument %q: default %v is not a bool", sp.Name, a.Name, a.Default)
			}
		default:
			return fmt.Errorf("jobs: stage %q argument %q: unknown type %q", sp.Name, a.Name, a.Type)
		}
	}
	return nil
}

// Summary is what a stage reports: the runner logs it as one line.
type Summary struct {
	Table   string             // main output table ("" if none)
	Rows    int64              // rows committed
	Skipped bool               // nothing done (already committed, other shard, empty input)
	Note    string             // human-readable remark, e.g. "empty input: nothing to score"
	Metrics map[string]float64 // key numbers, e.g. {"accuracy": 0.93}
	Seconds float64            // filled in by the runner
}
