package arrowio

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Retention is rljob lake gc --keep-checkpoints last=K,every=M: per run,
// keep the newest K checkpoint units and the newest unit of every step
// that is a multiple of M (M = 0: none), besides those PlanRetention always
// keeps.
type Retention struct {
	Last  int
	Every int64
}

func (r Retention) String() string { return fmt.Sprintf("last=%d,every=%d", r.Last, r.Every) }

// ParseRetention parses "last=K,every=M" (either part may be left out,
// neither repeated; K >= 1, since a run's newest checkpoint is always kept;
// M >= 0).
func ParseRetention(s string) (Retention, error) {
	r := Retention{Last: 1}
	seen := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.ParseInt(v, 10, 64)
		prev, dup := seen[k]
		seen[k] = kv
		switch {
		case dup && (k == "last" || k == "every"):
			return r, fmt.Errorf("%s given twice (%q and %q): give each key once", k, prev, kv)
		case !ok || err != nil:
			return r, fmt.Errorf("%q: want last=K or every=M with whole numbers", kv)
		case k == "last" && n >= 1 && n < 1<<31:
			r.Last = int(n)
		case k == "every" && n >= 0:
			r.Every = n
		case k == "last":
			return r, fmt.Errorf("last=%d: keep at least the newest checkpoint (last >= 1)", n)
		case k == "every":
			return r, fmt.Errorf("every=%d: must be >= 0", n)
		default:
			return r, fmt.Errorf("unknown key %q: want last=K,every=M", k)
		}
	}
	return r, nil
}

// ManifestNeeds is the Args key of a checkpoint manifest that lists the
// checkpoint folders (lake-relative) the unit cannot be loaded without: a
// light checkpoint's chain of parents down to a full state. PlanRetention
// keeps them as long as it keeps the unit.
const ManifestNeeds = "needs"

// ArgRef is a policy-like stage argument (policy, ref) recorded by a call
// of run Run at step Step: 'step=K' names a checkpoint of Run, 'run=X' the
// newest of run X committed before At (zero At: X's newest), 'run=X/step=K'
// one of X, and a folder path a checkpoint of the lake when it lies in one.
// 'latest' names nothing beyond what a run's newest checkpoints are (the
// predecessor of each train or sft checkpoint is not kept for it: keeping
// it would keep every checkpoint of a run).
type ArgRef struct {
	Run   string
	Step  int64
	Value string
	At    time.Time
}

// RolloutRef is one (run, step, policy_step, tag) of the rollouts table.
// An eval rollout (tag other than train), or a train rollout sampled from a
// checkpoint older than the previous step's (replay, asynchronous sampling,
// a run that trains every few steps), keeps that checkpoint step. An
// on-policy train rollout — policy_step = its step − 1, or its own step —
// does not: in GRPO every step's rollouts name the step just trained, so
// counting them would keep every checkpoint, and the update that used
// them read the behaviour logprobs stored with them. (A rule on steps, not
// on which checkpoints remain, so a later gc never unprotects one.)
type RolloutRef struct {
	Run        string
	Step       int64
	PolicyStep int64
	Train      bool
}

// RetentionPlan is what PlanRetention decided.
type RetentionPlan struct {
	Keep   map[Unit]string // unit → why it is kept
	Remove []Unit
}

// PlanRetention lists the checkpoint units of run (every run when "") that
// r does not keep. Always kept: each run's first checkpoint (the default
// KL reference and the run's start), every unit of a step that an ArgRef
// or an off-policy RolloutRef names (given, from call records and
// rollouts; plus the policy and ref arguments of every checkpoint
// manifest, of every run, read here), and the newest K units and every
// M-th step's newest unit of each run.
func (l *Lake) PlanRetention(r Retention, run string, args []ArgRef, rollouts []RolloutRef) (*RetentionPlan, error) {
	runs, err := l.Runs(TableCheckpoints)
	if err != nil {
		return nil, err
	}
	units := map[string][]Unit{}
	made := map[Unit]time.Time{}
	needs := map[Unit][]string{}
	for _, rn := range runs {
		us, err := l.Units(TableCheckpoints, rn)
		if err != nil {
			return nil, err
		}
		units[rn] = us
		for _, u := range us {
			m, err := l.ReadManifest(u)
			if err != nil {
				return nil, fmt.Errorf("arrowio: retention: %s: %w (lake verify names the damage)", u.Dir(), err)
			}
			made[u] = m.CreatedAt
			if ns, ok := m.Args[ManifestNeeds].([]any); ok {
				for _, n := range ns {
					if v, ok := n.(string); ok {
						needs[u] = append(needs[u], v)
					}
				}
			}
			for _, v := range manifestRefs(m) {
				args = append(args, ArgRef{Run: u.Run, Step: u.Step, Value: v, At: m.CreatedAt})
			}
		}
	}
	plan := &RetentionPlan{Keep: map[Unit]string{}}
	keepStep := func(rn string, step int64, why string) {
		for _, u := range units[rn] {
			if u.Step == step {
				if _, ok := plan.Keep[u]; !ok {
					plan.Keep[u] = why
				}
			}
		}
	}
	for _, a := range args {
		rn, step, ok := l.resolveRef(a, units, made)
		if ok {
			keepStep(rn, step, fmt.Sprintf("named by %q at run %s step %d", a.Value, a.Run, a.Step))
		}
	}
	for _, ro := range rollouts {
		if ro.Train && ro.PolicyStep >= ro.Step-1 {
			continue // on-policy: the previous step's checkpoint, or this step's own
		}
		keepStep(ro.Run, ro.PolicyStep, fmt.Sprintf("sampled rollouts of step %d", ro.Step))
	}
	for _, us := range units {
		if len(us) == 0 {
			continue
		}
		keep := func(u Unit, why string) {
			if _, ok := plan.Keep[u]; !ok {
				plan.Keep[u] = why
			}
		}
		keep(us[0], "the run's first checkpoint")
		for i := max(0, len(us)-r.Last); i < len(us); i++ {
			keep(us[i], fmt.Sprintf("among the last %d", r.Last))
		}
		if r.Every > 0 {
			for i, u := range us {
				if u.Step%r.Every == 0 && (i+1 == len(us) || us[i+1].Step != u.Step) {
					keep(u, fmt.Sprintf("step a multiple of %d", r.Every))
				}
			}
		}
	}
	l.keepNeeded(plan, needs)
	for rn, us := range units {
		if run != "" && rn != run {
			continue
		}
		for _, u := range us {
			if _, ok := plan.Keep[u]; !ok {
				plan.Remove = append(plan.Remove, u)
			}
		}
	}
	sortUnits(plan.Remove)
	sort.SliceStable(plan.Remove, func(i, j int) bool { return plan.Remove[i].Run < plan.Remove[j].Run })
	return plan, nil
}

// keepNeeded adds to plan.Keep the folders kept units need (ManifestNeeds),
// and theirs, until nothing is added.
func (l *Lake) keepNeeded(plan *RetentionPlan, needs map[Unit][]string) {
	for changed := true; changed; {
		changed = false
		for u := range plan.Keep {
			for _, v := range needs[u] {
				parts, ok := l.checkpointPath(v)
				if !ok || len(parts) != 3 {
					continue
				}
				rn, ok1 := parseKey(parts[0], KeyRun)
				st, ok2 := parseKey(parts[1], KeyStep)
				k, ok3 := canonicalStep(st)
				call, shard, ok4 := parsePart(parts[2])
				if !(ok1 && ok2 && ok3 && ok4) {
					continue
				}
				n := Unit{Table: TableCheckpoints, Run: rn, Step: k, Call: call, Shard: shard}
				if _, kept := plan.Keep[n]; !kept {
					plan.Keep[n] = fmt.Sprintf("replayed from by %s", u.Dir())
					changed = true
				}
			}
		}
	}
}

// manifestRefs are the checkpoint references a checkpoint manifest makes:
// the policy and ref arguments its stage was given (args.policy,
// args.ref), as a call record holds them, so that 'latest' keeps nothing
// (see ArgRef). A folder given as policy is taken as recorded in the
// manifest's own policy entry (the resolved parent: lake-relative, or
// absolute in manifests of older rljob versions). A manifest without an args record (written
// by hand) names its references at the top level.
func manifestRefs(m *Manifest) []string {
	given, nested := m.Args["args"].(map[string]any)
	var out []string
	for _, k := range []string{"policy", "ref"} {
		top, _ := m.Args[k].(string)
		if !nested {
			if top != "" {
				out = append(out, top)
			}
			continue
		}
		v, _ := given[k].(string)
		if isFolderRef(v) && k == "policy" && top != "" {
			v = top
		}
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// isFolderRef: v names a checkpoint folder, not latest, none, step=K or
// run=X[/step=K].
func isFolderRef(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && v != "latest" && v != "none" && v != "ref" &&
		!strings.HasPrefix(v, KeyStep+"=") && !strings.HasPrefix(v, KeyRun+"=")
}

// resolveRef turns an ArgRef into a checkpoint step of a run.
func (l *Lake) resolveRef(a ArgRef, units map[string][]Unit, made map[Unit]time.Time) (string, int64, bool) {
	v := strings.TrimSpace(a.Value)
	switch {
	case v == "" || v == "latest" || v == "none":
		return "", 0, false
	case strings.HasPrefix(v, KeyStep+"="):
		k, ok := canonicalStep(strings.TrimPrefix(v, KeyStep+"="))
		return a.Run, k, ok
	case strings.HasPrefix(v, KeyRun+"="):
		rest := strings.TrimPrefix(v, KeyRun+"=")
		rn, st, hasStep := strings.Cut(rest, "/")
		if hasStep {
			k, ok := canonicalStep(strings.TrimPrefix(st, KeyStep+"="))
			return rn, k, ok && strings.HasPrefix(st, KeyStep+"=")
		}
		us := units[rn]
		for i := len(us) - 1; i >= 0; i-- {
			if a.At.IsZero() || !made[us[i]].After(a.At) {
				return rn, us[i].Step, true
			}
		}
		return "", 0, false
	}
	parts, ok := l.checkpointPath(v)
	if !ok {
		return "", 0, false
	}
	if len(parts) < 2 {
		return "", 0, false
	}
	rn, ok1 := parseKey(parts[0], KeyRun)
	st, ok2 := parseKey(parts[1], KeyStep)
	k, ok3 := canonicalStep(st)
	return rn, k, ok1 && ok2 && ok3
}

// checkpointPath splits a checkpoint folder v (lake-relative, or absolute)
// into its components below checkpoints/ of this lake. An absolute folder
// outside the lake that no longer exists and ends in
// checkpoints/run=R/step=S/part-C-H is taken as this lake's: older rljob
// versions recorded absolute paths, and the lake has been moved since.
func (l *Lake) checkpointPath(v string) ([]string, bool) {
	p := v
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.Root, p) // a lake-relative folder
	}
	rel, err := filepath.Rel(filepath.Join(l.Root, TableCheckpoints), filepath.Clean(p))
	if err == nil && !strings.HasPrefix(rel, "..") {
		return strings.Split(filepath.ToSlash(rel), "/"), true
	}
	parts := strings.Split(filepath.ToSlash(filepath.Clean(p)), "/")
	if n := len(parts); n >= 5 && parts[n-4] == TableCheckpoints {
		if _, _, isPart := parsePart(parts[n-1]); isPart {
			if ok, _ := exists(p); !ok {
				return parts[n-3:], true
			}
		}
	}
	return nil, false
}

// RemoveUnit deletes a committed unit: it is renamed into _staging first
// (readers see it whole or not at all), then removed there, and its step
// folder too when that is left empty.
func (l *Lake) RemoveUnit(u Unit) error {
	if err := u.Validate(); err != nil {
		return err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := filepath.Join(l.Root, StagingDir, "gc."+u.Table+"."+hex.EncodeToString(rnd[:]))
	dir := l.Path(u.Dir())
	if err := os.Rename(dir, tmp); err != nil {
		return fmt.Errorf("arrowio: remove %s: %w", u.Dir(), err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	_ = os.Remove(filepath.Dir(dir)) // the step folder, if now empty
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("arrowio: remove %s: %w", u.Dir(), err)
	}
	return nil
}
