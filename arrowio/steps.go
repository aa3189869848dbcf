package arrowio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// StepMarker is one committed marker of TableSteps: shard Shard of NumShards
// finished step Step of Run with the job file whose sha256 is JobSHA256.
type StepMarker struct {
	Run       string
	Step      int64
	Call      int // of its unit folder part-<call>-<shard>
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
// The step folders are read in parallel; the error reported is the one a
// pass in step order meets first (folder problems before manifest ones).
// A step a compacted steps segment printed and that has not changed since
// is taken from the print (see MarkerPrintsFile).
func (l *Lake) StepMarkers(run string) ([]StepMarker, error) {
	ms, _, err := l.stepMarkers(run)
	return ms, err
}

// stepMarkers is StepMarkers, also counting the steps taken from prints.
func (l *Lake) stepMarkers(run string) ([]StepMarker, int, error) {
	steps, err := l.runSteps(TableSteps, run)
	if err != nil {
		return nil, 0, err
	}
	prints := l.markerPrints(run)
	res := make([]stepMarkers, len(steps))
	parallelFor(len(steps), func(i int) {
		if ps := prints[steps[i]]; len(ps) > 0 {
			if ms, ok := l.checkPrints(run, steps[i], ps); ok {
				res[i].markers, res[i].printed = ms, true
				return
			}
		}
		res[i] = l.readStepMarkers(run, steps[i])
	})
	for _, r := range res {
		if r.dirErr != nil {
			return nil, 0, r.dirErr
		}
	}
	var out []StepMarker
	printed := 0
	for _, r := range res {
		if r.err != nil {
			return nil, 0, r.err
		}
		out = append(out, r.markers...)
		if r.printed {
			printed++
		}
	}
	return out, printed, nil
}

// stepMarkers is what one step folder of TableSteps holds: its markers
// sorted by shard, or the folder's problem (dirErr: a stray manifest, a
// unit without one, an unreadable folder) or a marker's (err).
type stepMarkers struct {
	markers     []StepMarker
	dirErr, err error
	printed     bool // taken from an unchanged print
}

// markerManifest is the part of a marker's _commit.json the runner reads.
type markerManifest struct {
	Unit
	Args struct {
		NumShards *json.Number `json:"num_shards"`
		JobSHA256 string       `json:"job_sha256"`
	} `json:"args"`
}

// readStepMarkers reads and checks the markers of one step folder.
func (l *Lake) readStepMarkers(run string, step int64) (r stepMarkers) {
	stepDir := Unit{Table: TableSteps, Run: run, Step: step}.PartDir()
	dir := l.Path(stepDir)
	names, err := readNames(dir)
	if err != nil {
		r.dirErr = fmt.Errorf("arrowio: list %s: %w", dir, err)
		return r
	}
	sort.Strings(names)
	for _, n := range names {
		if n == ManifestName {
			r.dirErr = &MarkerError{Dir: stepDir, Msg: "holds a " + ManifestName + " outside any part-<call>-<shard> folder (a marker copied by hand?); delete it"}
			return r
		}
		call, shard, ok := parsePart(n)
		if !ok {
			continue
		}
		u := Unit{Table: TableSteps, Run: run, Step: step, Call: call, Shard: shard}
		buf, err := os.ReadFile(filepath.Join(dir, n, ManifestName))
		switch {
		case err == nil:
			if r.err == nil {
				r.err = r.add(u, buf)
			}
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			if files, err := os.ReadDir(filepath.Join(dir, n)); err == nil && len(files) > 0 {
				r.dirErr = &MarkerError{Dir: u.Dir(), Msg: "its " + ManifestName + " is missing (deleted?), so whether step " + strconv.FormatInt(step, 10) + " finished cannot be told; delete the folder to redo the step"}
				return r
			}
		default:
			if r.err == nil {
				r.err = &MarkerError{Dir: u.Dir(), Msg: "arrowio: read manifest: " + err.Error()}
			}
		}
	}
	sort.Slice(r.markers, func(i, j int) bool { return r.markers[i].Shard < r.markers[j].Shard })
	return r
}

// add checks the manifest buf of marker u and appends the marker.
func (r *stepMarkers) add(u Unit, buf []byte) error {
	var m markerManifest
	if err := json.Unmarshal(buf, &m); err != nil {
		return &MarkerError{Dir: u.Dir(), Msg: fmt.Sprintf("arrowio: corrupt %s: %v", ManifestName, err)}
	}
	if m.Unit != u {
		return &MarkerError{Dir: u.Dir(), Msg: fmt.Sprintf("its _commit.json describes %s (a copied or moved marker); delete the folder", m.Unit.Dir())}
	}
	n, ok := 0, false
	if m.Args.NumShards != nil {
		v, err := m.Args.NumShards.Int64()
		n, ok = int(v), err == nil
	} else if u.Shard == 0 {
		n, ok = 1, true // a marker of rljob 0.1, unsharded
	}
	if !ok || n < 1 || u.Shard >= n {
		return &MarkerError{Dir: u.Dir(), Msg: "its _commit.json has no valid num_shards"}
	}
	r.markers = append(r.markers, StepMarker{Run: u.Run, Step: u.Step, Call: u.Call, Shard: u.Shard, NumShards: n, JobSHA256: m.Args.JobSHA256})
	return nil
}

// parallelFor runs f(0..n-1) on GOMAXPROCS goroutines.
func parallelFor(n int, f func(int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
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
	// Printed counts the steps whose markers were taken from unchanged
	// marker prints rather than read (see MarkerPrintsFile).
	Printed int
}

// ReadStepStatus reads run's markers. A complete step after an incomplete
// one (a marker deleted or copied forward) is a *MarkerError naming it.
func (l *Lake) ReadStepStatus(run string) (*StepStatus, error) {
	ms, printed, err := l.stepMarkers(run)
	if err != nil {
		return nil, err
	}
	st := &StepStatus{Complete: map[int64]bool{}, Shards: map[int64]map[int]bool{}, N: map[int64]int{}, Printed: printed}
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
