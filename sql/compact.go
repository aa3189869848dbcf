package sql

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/rljob/rljob/arrowio"
)

// CompactOptions configure CompactLake.
type CompactOptions struct {
	Run string // only this run; "" = every run
	// Hook, when set, is called at named points of each segment's write
	// (crash tests SIGKILL the process there).
	Hook func(point string)
}

// CompactLockName is the flock file in _locks/ that one compaction holds.
const CompactLockName = "compact.lock"

// ErrCompactionBusy is wrapped by CompactLake when another compaction
// holds the lake's compaction lock.
var ErrCompactionBusy = errors.New("another compaction holds the lock")

// CompactLake writes the segments (see arrowio's CompactedDir) of every
// table with run=/step= folders (checkpoints excepted) and returns them:
// for each run, each aligned range of arrowio.SegmentSizes whose steps are
// all complete (every shard's marker committed; arrowio.ReadStepStatus) and
// that no segment covers yet, largest sizes first. A range is built from
// the segments inside it and the committed units of its other steps, and
// is skipped when one of its step folders holds anything else. Table
// folders are never changed: a reader of the lake's Parquet sees the same
// files before, during and after; a kill at any point leaves at most a
// staging folder (lake gc removes it). One compaction runs at a time (an
// flock on _locks/compact.lock); a second returns an error.
func CompactLake(ctx context.Context, root string, o CompactOptions) ([]arrowio.Segment, error) {
	l, err := arrowio.OpenLake(root)
	if err != nil {
		return nil, err
	}
	lock, err := lockCompaction(l)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	e, err := Open(ctx, "")
	if err != nil {
		return nil, err
	}
	defer e.Close()
	tables, err := l.Tables()
	if err != nil {
		return nil, err
	}
	next := map[string]int64{} // run → first incomplete step
	var done []arrowio.Segment
	for _, table := range tables {
		if skipFolder(table) {
			continue
		}
		runs, err := l.Runs(table)
		if err != nil {
			return done, err
		}
		for _, run := range runs {
			if o.Run != "" && run != o.Run {
				continue
			}
			if arrowio.ValidatePartitionValue(run) != nil {
				continue
			}
			n, ok := next[run]
			if !ok {
				st, err := l.ReadStepStatus(run)
				if err != nil {
					return done, fmt.Errorf("sql: compact run %s: %w", run, err)
				}
				n, next[run] = st.Next, st.Next
			}
			segs, err := compactRun(ctx, e, l, table, run, n, o.Hook)
			done = append(done, segs...)
			if err != nil {
				return done, err
			}
		}
	}
	for _, run := range slices.Sorted(maps.Keys(next)) {
		segs, err := writeSummaries(ctx, l, run, next[run], o.Hook)
		done = append(done, segs...)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func lockCompaction(l *arrowio.Lake) (*os.File, error) {
	p := filepath.Join(l.Root, arrowio.LocksDir, CompactLockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("sql: compact: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sql: compact: %w %s", ErrCompactionBusy, p)
		}
		return nil, fmt.Errorf("sql: compact: flock %s: %w", p, err)
	}
	return f, nil
}

// compactRun writes the missing segments of (table, run) below step next.
func compactRun(ctx context.Context, e *Engine, l *arrowio.Lake, table, run string, next int64, hook func(string)) ([]arrowio.Segment, error) {
	var done []arrowio.Segment
	all, err := l.Segments(table)
	if err != nil {
		return nil, err
	}
	for _, size := range arrowio.SegmentSizes {
		for first := int64(0); first+size <= next; first += size {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			seg := arrowio.Segment{Table: table, Run: run, First: first, Last: first + size - 1}
			var inside []*arrowio.SegmentManifest
			coveredAlready := false
			for _, s := range all {
				if s.Run != run {
					continue
				}
				if s.First <= seg.First && seg.Last <= s.Last {
					coveredAlready = true
					break
				}
				if seg.First <= s.First && s.Last <= seg.Last {
					inside = append(inside, s)
				}
			}
			if coveredAlready {
				continue
			}
			m, err := writeSegment(ctx, e, l, seg, arrowio.ChooseSegments(inside), hook)
			if err != nil {
				return done, err
			}
			if m != nil {
				done = append(done, seg)
				all = append(all, m)
			}
		}
	}
	return done, nil
}

// writeSegment builds seg from the segments inside it and the units of its
// other steps; nil when a step folder is not clean, there are no rows, or
// another compaction committed it first.
func writeSegment(ctx context.Context, e *Engine, l *arrowio.Lake, seg arrowio.Segment, inside []*arrowio.SegmentManifest, hook func(string)) (*arrowio.SegmentManifest, error) {
	var (
		sources  []arrowio.SegmentSource
		raw      []string
		segFiles []string
	)
	for step := seg.First; step <= seg.Last; step++ {
		var in *arrowio.SegmentManifest
		for _, s := range inside {
			if s.Covers(step) {
				in = s
			}
		}
		if in != nil {
			if step == in.First {
				if err := in.LoadSources(l); err != nil {
					return nil, err
				}
				sources = append(sources, in.Sources...)
				segFiles = append(segFiles, in.Path(l))
			}
			continue
		}
		if clean, err := l.StepFolderClean(seg.Table, seg.Run, step); err != nil || !clean {
			return nil, err
		}
		units, err := l.StepUnits(seg.Table, seg.Run, step)
		if err != nil {
			return nil, err
		}
		for _, u := range units {
			src, err := l.SegmentSourceOf(u)
			if err != nil {
				return nil, err
			}
			sources = append(sources, src)
			files, err := filepath.Glob(filepath.Join(l.Path(u.Dir()), "*.parquet"))
			if err != nil {
				return nil, err
			}
			raw = append(raw, files...)
		}
	}
	if len(raw) == 0 && len(segFiles) == 0 {
		return nil, nil
	}
	t := lakeTable{name: seg.Table, keys: map[string]bool{arrowio.KeyRun: true, arrowio.KeyStep: true}}
	var q string
	switch {
	case len(segFiles) == 0:
		q = t.readSQL(fileList(raw), false)
	default:
		q = t.viewSQL(raw, segFiles, false)
	}
	st, err := l.BeginSegment(seg)
	if err != nil {
		return nil, err
	}
	call := func(p string) {
		if hook != nil {
			hook(p)
		}
	}
	call("begun")
	out := filepath.Join(st.Path(), arrowio.SegmentFile)
	if err := e.Exec(ctx, "COPY ("+q+") TO "+QuoteString(out)+" (FORMAT parquet, COMPRESSION zstd)"); err != nil {
		_ = st.Abort()
		return nil, fmt.Errorf("sql: compact %s: %w", seg, err)
	}
	if seg.Table == arrowio.TableSteps {
		if err := l.WriteMarkerPrints(st.Path(), seg.Run, seg.First, seg.Last); err != nil {
			_ = st.Abort()
			return nil, fmt.Errorf("sql: compact %s: %w", seg, err)
		}
	}
	call("written")
	m, err := st.Commit(sources)
	if err != nil {
		if errors.Is(err, arrowio.ErrAlreadyCommitted) {
			return nil, nil
		}
		return nil, err
	}
	call("committed")
	return m, nil
}
