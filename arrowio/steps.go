package arrowio

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// StepMarker is one committed marker of TableSteps: shard Shard of NumShards
// finished step Step of Run with the job file whose sha256 is JobSHA256.
type StepMarker struct {
	Run       string
	Step      int64
	Shard     int
	NumShards int
	JobSHA256 string
}

// MarkerError is a step marker that cannot be trusted: its manifest names
// another unit than its folder (copied or moved), it lacks its shard count,
// or a step before it has no marker (deleted). The run refuses to resume
// and lake verify reports the same marker.
type MarkerError struct {
	Dir string // lake-relative folder of the marker
	Msg string
}

func (e *MarkerError) Error() string {
	return "arrowio: step marker " + e.Dir + ": " + e.Msg
}

// StepMarkers reads every committed marker of run, sorted by (step, shard),
// each checked against its folder.
// A marker folder that holds files but no _commit.json (its manifest
// deleted) is a *MarkerError too: whether that step finished cannot be told.
func (l *Lake) StepMarkers(run string) ([]StepMarker, error) {
	units, err := l.markerUnits(run)
	if err != nil {
		return nil, err
	}
	out := make([]StepMarker, 0, len(units))
	for _, u := range units {
		m, err := l.ReadManifest(u)
		if err != nil {
			return nil, &MarkerError{Dir: u.Dir(), Msg: err.Error()}
		}
		if m.Unit != u {
			return nil, &MarkerError{Dir: u.Dir(), Msg: fmt.Sprintf("its _commit.json describes %s (a copied or moved marker); delete the folder", m.Unit.Dir())}
		}
		n, ok := argInt(m.Args, "num_shards")
		if !ok && u.Shard == 0 {
			n, ok = 1, true // a marker of rljob 0.1, unsharded
		}
		if !ok || n < 1 || u.Shard >= n {
			return nil, &MarkerError{Dir: u.Dir(), Msg: "its _commit.json has no valid num_shards"}
		}
		sha, _ := m.Args["job_sha256"].(string)
		out = append(out, StepMarker{Run: run, Step: u.Step, Shard: u.Shard, NumShards: n, JobSHA256: sha})
	}
	return out, nil
}

// StepStatus summarises a run's markers: the steps complete for every shard
// (contiguous from 0 for a run written by rljob) and, per step, the shards
// whose markers are there.
type StepStatus struct {
	Complete map[int64]bool
	Shards   map[int64]map[int]bool
	N        map[int64]int // num_shards recorded for the step
	// Next is one past the last complete step of the contiguous prefix
	// 0, 1, ...: where the run resumes.
	Next int64
}

// ReadStepStatus reads run's markers. A complete step after an incomplete
// one (a marker deleted or copied forward) is a *MarkerError naming it.
func (l *Lake) ReadStepStatus(run string) (*StepStatus, error) {
	ms, err := l.StepMarkers(run)
	if err != nil {
		return nil, err
	}
	st := &StepStatus{Complete: map[int64]bool{}, Shards: map[int64]map[int]bool{}, N: map[int64]int{}}
	for _, m := range ms {
		if st.Shards[m.Step] == nil {
			st.Shards[m.Step] = map[int]bool{}
		}
		if n, ok := st.N[m.Step]; ok && n != m.NumShards {
			return nil, &MarkerError{Dir: stepMarkerDir(run, m.Step, m.Shard),
				Msg: fmt.Sprintf("records %d shards but another marker of step %d records %d", m.NumShards, m.Step, n)}
		}
		st.N[m.Step] = m.NumShards
		st.Shards[m.Step][m.Shard] = true
	}
	var steps []int64
	for s, shards := range st.Shards {
		if len(shards) == st.N[s] {
			st.Complete[s] = true
			steps = append(steps, s)
		}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	for _, s := range steps {
		if s != st.Next {
			return nil, &MarkerError{Dir: stepMarkerDir(run, s, 0),
				Msg: fmt.Sprintf("step %d is marked complete but step %d is not (a deleted or copied marker); restore step %d's marker or delete the later ones", s, st.Next, st.Next)}
		}
		st.Next++
	}
	return st, nil
}

func stepMarkerDir(run string, step int64, shard int) string {
	return Unit{Table: TableSteps, Run: run, Step: step, Shard: shard}.Dir()
}

// argInt reads an integer manifest argument (json.Number after
// readManifest, float64 or int from elsewhere).
func argInt(args map[string]any, k string) (int, bool) {
	switch v := args[k].(type) {
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	case float64:
		return int(v), v == float64(int(v))
	case int:
		return v, true
	case int64:
		return int(v), true
	}
	return 0, false
}

// markerUnits is Units(TableSteps, run) in one pass over the run's step
// folders that also refuses a marker folder left without its manifest.
func (l *Lake) markerUnits(run string) ([]Unit, error) {
	steps, err := l.runSteps(TableSteps, run)
	if err != nil {
		return nil, err
	}
	var out []Unit
	for _, step := range steps {
		dir := l.Path(Unit{Table: TableSteps, Run: run, Step: step}.PartDir())
		parts, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("arrowio: list %s: %w", dir, err)
		}
		for _, pe := range parts {
			if pe.Name() == ManifestName {
				return nil, &MarkerError{Dir: Unit{Table: TableSteps, Run: run, Step: step}.PartDir(),
					Msg: "holds a " + ManifestName + " outside any part-<call>-<shard> folder (a marker copied by hand?); delete it"}
			}
			call, shard, ok := parsePart(pe.Name())
			if !ok || !pe.IsDir() {
				continue
			}
			u := Unit{Table: TableSteps, Run: run, Step: step, Call: call, Shard: shard}
			if ok, err := exists(filepath.Join(dir, pe.Name(), ManifestName)); err != nil {
				return nil, err
			} else if ok {
				out = append(out, u)
				continue
			}
			if files, err := os.ReadDir(filepath.Join(dir, pe.Name())); err == nil && len(files) > 0 {
				return nil, &MarkerError{Dir: u.Dir(), Msg: "its " + ManifestName + " is missing (deleted?), so whether step " + strconv.FormatInt(step, 10) + " finished cannot be told; delete the folder to redo the step"}
			}
		}
	}
	sortUnits(out)
	return out, nil
}
