package arrowio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// This file is the one reader of the lake's layout that the runner, the
// engine's views and the stages share: which Parquet files a table holds and
// to which (run, step, call, shard) they belong, which units of a run are
// committed, and which steps of a run are complete.

// TableSteps is the table of step markers (package jobs writes them): one
// unit steps/run=R/step=S/part-0-<shard>/ per shard at the end of a step. Its
// manifest args record "num_shards", "shard" and "job_sha256".
const TableSteps = "steps"

// TableCalls is the table of call records (package jobs writes them): one
// unit calls/run=R/step=S/part-<call>-<shard>/ per stage call of a step,
// committed after the call's outputs, whether it ran or was skipped.
const TableCalls = "calls"

// DataFile is one Parquet file of a table folder. Run and Step come from
// run=/step= folders in its path (HasRun, HasStep say whether they were
// there); Call and Shard from the part-<call>-<shard> folder of a committed
// unit (InUnit).
type DataFile struct {
	Path    string // absolute
	Run     string
	Step    int64
	HasRun  bool
	HasStep bool
	InUnit  bool
	Call    int
	Shard   int
}

// Tables lists the table folders of the lake (not _staging, _locks, hidden
// folders), sorted.
func (l *Lake) Tables() ([]string, error) {
	ents, err := os.ReadDir(l.Root)
	if err != nil {
		return nil, fmt.Errorf("arrowio: read lake %s: %w", l.Root, err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() && !strings.HasPrefix(n, "_") && !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	return out, nil
}

// unitFiles adds the Parquet files of the unit folder dir when it is
// committed, and tells WalkDir not to descend.
func (l *Lake) unitFiles(dir string, call, shard int, out *[]DataFile) error {
	if ok, err := exists(filepath.Join(dir, ManifestName)); err != nil || !ok {
		if err != nil {
			return err
		}
		return fs.SkipDir
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	root := l.Root
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".parquet") && !strings.HasPrefix(n, ".") && e.Type().IsRegular() {
			p := filepath.Join(dir, n)
			f := fileKeys(root, p, DataFile{Path: p, InUnit: true, Call: call, Shard: shard})
			*out = append(*out, f)
		}
	}
	return fs.SkipDir
}

// fileKeys fills Run and Step from the run=/step= components of p.
func fileKeys(root, p string, f DataFile) DataFile {
	rel, err := filepath.Rel(root, filepath.Dir(p))
	if err != nil {
		return f
	}
	for _, c := range strings.Split(filepath.ToSlash(rel), "/") {
		if v, ok := parseKey(c, KeyRun); ok {
			f.Run, f.HasRun = v, true
		} else if v, ok := parseKey(c, KeyStep); ok {
			if n, ok := canonicalStep(v); ok {
				f.Step, f.HasStep = n, true
			}
		}
	}
	return f
}

// parsePart parses a unit folder name part-<call>-<shard>.
func parsePart(name string) (call, shard int, ok bool) {
	rest, ok := strings.CutPrefix(name, "part-")
	if !ok {
		return 0, 0, false
	}
	c, s, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	ci, err1 := strconv.Atoi(c)
	si, err2 := strconv.Atoi(s)
	if err1 != nil || err2 != nil || ci < 0 || si < 0 || strconv.Itoa(ci) != c || strconv.Itoa(si) != s {
		return 0, 0, false
	}
	return ci, si, true
}

// canonicalStep parses a step folder value written as the runner writes it
// (no sign, no leading zeros).
func canonicalStep(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
		return 0, false
	}
	return n, true
}

// Units lists the committed units of table for run, sorted by (step, call,
// shard). A unit is committed when its folder holds _commit.json.
func (l *Lake) Units(table, run string) ([]Unit, error) {
	steps, err := l.runSteps(table, run)
	if err != nil {
		return nil, err
	}
	var out []Unit
	for _, step := range steps {
		us, err := l.StepUnits(table, run, step)
		if err != nil {
			return nil, err
		}
		out = append(out, us...)
	}
	sortUnits(out)
	return out, nil
}

// runSteps lists the steps that have a canonical step=S folder in
// table/run=R (none when the run has no folder).
func (l *Lake) runSteps(table, run string) ([]int64, error) {
	if err := (Unit{Table: table, Run: run}).Validate(); err != nil {
		return nil, err
	}
	runDir := filepath.Join(l.Root, table, KeyRun+"="+run)
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio: list %s: %w", runDir, err)
	}
	var steps []int64
	for _, se := range ents {
		v, ok := parseKey(se.Name(), KeyStep)
		if !ok || !se.IsDir() {
			continue
		}
		if step, ok := canonicalStep(v); ok {
			steps = append(steps, step)
		}
	}
	return steps, nil
}

// StepUnits lists the committed units of table for (run, step), sorted by
// (call, shard).
func (l *Lake) StepUnits(table, run string, step int64) ([]Unit, error) {
	u := Unit{Table: table, Run: run, Step: step}
	dir := l.Path(u.PartDir())
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio: list %s: %w", dir, err)
	}
	var out []Unit
	for _, e := range ents {
		call, shard, ok := parsePart(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if ok, err := exists(filepath.Join(dir, e.Name(), ManifestName)); err != nil {
			return nil, err
		} else if ok {
			out = append(out, Unit{Table: table, Run: run, Step: step, Call: call, Shard: shard})
		}
	}
	sortUnits(out)
	return out, nil
}

func sortUnits(us []Unit) {
	sort.Slice(us, func(i, j int) bool {
		a, b := us[i], us[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		if a.Call != b.Call {
			return a.Call < b.Call
		}
		return a.Shard < b.Shard
	})
}

// Runs lists the runs that have a folder in table, sorted.
func (l *Lake) Runs(table string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(l.Root, table))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio: list runs of %s: %w", table, err)
	}
	var out []string
	for _, e := range ents {
		if v, ok := parseKey(e.Name(), KeyRun); ok && e.IsDir() && v != "" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out, nil
}

// RunLockPath is the lock file of a run's runner: _locks/run=<R>.lock, or
// run=<R>.shard=<i>-of-<n>.lock for shard i of n (the shards of a job
// array run side by side, each writing only its own part files).
func RunLockPath(root, run string, shard, numShards int) string {
	name := KeyRun + "=" + run
	if numShards > 1 {
		name += fmt.Sprintf(".shard=%d-of-%d", shard, numShards)
	}
	return filepath.Join(root, LocksDir, name+".lock")
}
