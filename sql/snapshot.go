package sql

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rljob/rljob/arrowio"
)

// ThisStepPrefix starts the names of the views that show the current step's
// committed outputs: this_step_rollouts, this_step_rewards, ...
const ThisStepPrefix = "this_step_"

// Snapshot is what a statement of step Step of run Run sees (the job
// runner's visibility rule):
//
//   - a lake view (rollouts, rewards, ...) shows the files outside run=/step=
//     folders, the files of Run's steps before Step, and the files of other
//     runs' complete steps (Complete);
//   - a this_step_<table> view shows Run's committed units of step Step
//     written by calls before Call (every shard).
//
// So the views are the same on a first attempt and on every rerun of the
// step, and the same on every shard.
type Snapshot struct {
	Run      string
	Step     int64
	Call     int
	Complete func(run string, step int64) bool
}

// visible reports whether f is in the history a snapshot shows.
func (s *Snapshot) visible(f arrowio.DataFile) bool {
	switch {
	case !f.HasRun || !f.HasStep:
		return true
	case f.Run == s.Run:
		return f.Step < s.Step
	}
	return s.Complete != nil && s.Complete(f.Run, f.Step)
}

// thisStep reports whether f is an output of an earlier call of this step.
func (s *Snapshot) thisStep(f arrowio.DataFile) bool {
	return f.InUnit && f.HasRun && f.HasStep && f.Run == s.Run && f.Step == s.Step && f.Call < s.Call
}

// SetSnapshot sets (or, with nil, clears) the snapshot the next Refresh or
// RefreshThisStep applies.
func (e *Engine) SetSnapshot(s *Snapshot) { e.snap = s }

// Snapshot is the snapshot the views apply, nil when they show every file.
func (e *Engine) Snapshot() *Snapshot { return e.snap }

// scanTables lists the lake's tables with the files and segments the views
// read (arrowio.ListTable): under a snapshot those it shows, else all. A
// segment is used only when the snapshot shows every step it holds, so a
// view reads the same rows with or without segments.
func (e *Engine) scanTables() ([]lakeTable, error) {
	if e.lake == "" {
		return nil, nil
	}
	l := &arrowio.Lake{Root: e.lake}
	names, err := l.Tables()
	if err != nil {
		return nil, fmt.Errorf("sql: open lake %s: %w", e.lake, err)
	}
	lc := e.listCache()
	var tables []lakeTable
	for _, name := range names {
		if skipFolder(name) {
			continue
		}
		files, segs, err := l.ListTableCached(name, e.segmentVisible, e.snap == nil, lc)
		if err != nil {
			return nil, fmt.Errorf("sql: scan lake table %s: %w", name, err)
		}
		if len(files) == 0 && len(segs) == 0 {
			continue
		}
		t := lakeTable{name: name, dir: filepath.Join(e.lake, name), keys: map[string]bool{}, snap: true}
		for _, f := range files {
			t.all = append(t.all, f.Path)
			rel, err := filepath.Rel(t.dir, filepath.Dir(f.Path))
			if err != nil {
				return nil, fmt.Errorf("sql: scan lake table %s: %w", name, err)
			}
			for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
				if k, _, ok := strings.Cut(part, "="); ok {
					t.keys[k] = true
				}
			}
			if e.snap == nil || e.snap.visible(f) {
				t.files = append(t.files, f.Path)
			}
			if e.snap != nil && e.snap.thisStep(f) {
				t.thisStep = append(t.thisStep, f.Path)
			}
		}
		for _, s := range segs {
			t.segs = append(t.segs, s.Path(l))
			t.allSegs = append(t.allSegs, s.Path(l))
			t.keys[arrowio.KeyRun], t.keys[arrowio.KeyStep] = true, true
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// listCache is the engine's arrowio.ListCache moved to the snapshot: its
// run's steps before the snapshot's are complete (the runner's promise), so
// their listing is kept from one step to the next. Without a snapshot only
// segment manifests are cached.
func (e *Engine) listCache() *arrowio.ListCache {
	run, step := "", int64(0)
	if e.snap != nil {
		run, step = e.snap.Run, e.snap.Step
	}
	if e.lc == nil {
		e.lc = arrowio.NewListCache(run, step)
	}
	e.lc.Advance(run, step)
	return e.lc
}

// segmentVisible reports whether the snapshot (if any) shows every step of
// segment s.
func (e *Engine) segmentVisible(s *arrowio.SegmentManifest) bool {
	if e.snap == nil {
		return true
	}
	if s.Run == e.snap.Run {
		return s.Last < e.snap.Step
	}
	if e.snap.Complete == nil {
		return false
	}
	for step := s.First; step <= s.Last; step++ {
		if !e.snap.Complete(s.Run, step) {
			return false
		}
	}
	return true
}

// RefreshThisStep re-creates only the this_step_<table> views, for a
// snapshot whose Call moved on; it reads only this step's folders.
func (e *Engine) RefreshThisStep(ctx context.Context) error {
	if e.snap == nil {
		return e.refreshThisStep(ctx, nil)
	}
	l := &arrowio.Lake{Root: e.lake}
	names, err := l.Tables()
	if err != nil {
		return fmt.Errorf("sql: open lake %s: %w", e.lake, err)
	}
	var tables []lakeTable
	for _, name := range names {
		if skipFolder(name) {
			continue
		}
		units, err := l.StepUnits(name, e.snap.Run, e.snap.Step)
		if err != nil {
			return fmt.Errorf("sql: scan lake table %s: %w", name, err)
		}
		t := lakeTable{name: name, dir: filepath.Join(e.lake, name), snap: true,
			keys: map[string]bool{arrowio.KeyRun: true, arrowio.KeyStep: true}}
		for _, u := range units {
			if u.Call >= e.snap.Call {
				continue
			}
			files, err := filepath.Glob(filepath.Join(l.Path(u.Dir()), "*.parquet"))
			if err != nil {
				return fmt.Errorf("sql: list %s: %w", u.Dir(), err)
			}
			t.thisStep = append(t.thisStep, files...)
		}
		tables = append(tables, t)
	}
	return e.refreshThisStep(ctx, tables)
}

// refreshThisStep creates this_step_<table> for every table: its files of
// this step, else an empty view with the table's columns (the lake view's,
// or a known table's schema).
func (e *Engine) refreshThisStep(ctx context.Context, tables []lakeTable) error {
	have := map[string]bool{}
	for _, t := range tables {
		name := ThisStepPrefix + t.name
		sel := ""
		switch {
		case len(t.thisStep) > 0:
			sel = t.readSQL(fileList(t.thisStep), false)
		case e.lakeViews[t.name]:
			sel = "SELECT * FROM " + QuoteIdent(t.name) + " WHERE false"
		default:
			continue
		}
		have[t.name] = true
		if err := e.createView(ctx, name, t, sel); err != nil {
			return err
		}
	}
	for name := range e.lakeViews {
		if !have[name] && !isKnown(name) {
			have[name] = true
			sel := "SELECT * FROM " + QuoteIdent(name) + " WHERE false"
			if err := e.Exec(ctx, "CREATE OR REPLACE VIEW "+QuoteIdent(ThisStepPrefix+name)+" AS "+sel); err != nil {
				return fmt.Errorf("sql: refresh: empty view %s: %w", ThisStepPrefix+name, err)
			}
		}
	}
	return e.emptyKnownViews(ctx, ThisStepPrefix, have)
}

func isKnown(name string) bool {
	for _, k := range knownTables {
		if k == name {
			return true
		}
	}
	return false
}

// IsThisStepView reports whether name is one of the this_step_ views.
func IsThisStepView(name string) bool { return strings.HasPrefix(name, ThisStepPrefix) }
