package arrowio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Dropping an incomplete step (rljob lake drop-step).
//
// A step of a run lives in one folder per table (T/run=R/step=S/), so no
// single rename removes it. DropStep makes the removal atomic with a journal:
//
//  1. it creates _staging/drop.<run>.<step>.<random>/ (with its writer lock,
//     like any staging folder) and lists there, in _drop.json, the step
//     folders it will move; _drop.json is written under a temporary name,
//     fsynced and renamed into place. That rename is the commit point:
//     before it the lake is as it was (gc removes the leftover folder);
//  2. it renames each listed step folder into the drop folder (fsyncing
//     each parent), then deletes the drop folder.
//
// A drop interrupted after its commit point is finished (the remaining
// folders moved, the drop folder deleted) by FinishDrops, which the runner
// calls for its run before reading the lake, and DropStep calls first: so
// no runner ever sees a half-dropped step. gc never removes a drop folder
// that holds a journal.

// DropJournal is the name of the journal inside a drop folder.
const DropJournal = "_drop.json"

// dropPrefix starts the name of every drop folder in _staging.
const dropPrefix = "drop."

// ErrStepComplete is wrapped by DropStep for a step whose markers are all
// there: a complete step is history and is never dropped.
var ErrStepComplete = errors.New("step is complete")

// ErrNothingToDrop is wrapped by DropStep when the step has no folder.
var ErrNothingToDrop = errors.New("nothing to drop")

// DroppedUnit is one committed unit DropStep removed.
type DroppedUnit struct {
	Unit
	Rows  int64
	Bytes int64
}

// DropReport says what DropStep removed: the committed units, and the step
// folders (lake-relative) it moved away, which may also hold uncommitted
// leftovers.
type DropReport struct {
	Run     string
	Step    int64
	Units   []DroppedUnit
	Folders []string
}

// dropJournal is the content of _drop.json.
type dropJournal struct {
	Run     string   `json:"run"`
	Step    int64    `json:"step"`
	Folders []string `json:"folders"` // lake-relative step folders, slash-separated
}

// dropCrashHook, when set (tests), is called just before the journal's
// commit (moved = -1), after it (0) and after each folder is moved (the
// count moved so far); a non-nil error stops DropStep there, leaving the
// lake as a kill would.
var dropCrashHook func(moved int) error

// DropStep removes every folder of (run, step) — in every table: data,
// call records, step markers — when the step is not complete, atomically
// (see above). The caller holds the run's lock. A complete step is refused
// (ErrStepComplete), as is a step with nothing to drop (ErrNothingToDrop);
// both leave the lake unchanged.
func (l *Lake) DropStep(run string, step int64) (*DropReport, error) {
	if err := (Unit{Table: TableSteps, Run: run, Step: step}).Validate(); err != nil {
		return nil, err
	}
	if err := l.FinishDrops(run); err != nil {
		return nil, err
	}
	st, err := l.ReadStepStatus(run)
	if err != nil {
		return nil, err
	}
	if st.Complete[step] {
		return nil, fmt.Errorf("arrowio: drop step %d of run %q: %w (all %d shard markers are committed); only an unfinished step can be dropped", step, run, ErrStepComplete, st.N[step])
	}
	rep, err := l.stepFolders(run, step)
	if err != nil {
		return nil, err
	}
	if len(rep.Folders) == 0 {
		return nil, fmt.Errorf("arrowio: drop step %d of run %q: %w: no table has a folder run=%s/step=%d", step, run, ErrNothingToDrop, run, step)
	}
	dir, lock, err := l.commitDropJournal(dropJournal{Run: run, Step: step, Folders: rep.Folders})
	if err != nil {
		return nil, fmt.Errorf("arrowio: drop step %d of run %q: %w", step, run, err)
	}
	defer unlockRemove(lock, dir+LockSuffix)
	if err := l.finishDrop(dir, rep.Folders); err != nil {
		return nil, fmt.Errorf("arrowio: drop step %d of run %q: %w (rerun drop-step to finish it)", step, run, err)
	}
	return rep, nil
}

// stepFolders lists the step folders of (run, step) that hold unit folders,
// with the committed units inside them.
func (l *Lake) stepFolders(run string, step int64) (*DropReport, error) {
	tables, err := l.Tables()
	if err != nil {
		return nil, err
	}
	rep := &DropReport{Run: run, Step: step}
	for _, t := range tables {
		if validateTable(t) != nil {
			continue
		}
		rel := Unit{Table: t, Run: run, Step: step}.PartDir()
		names, err := readNames(l.Path(rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("arrowio: list %s: %w", rel, err)
		}
		managed := false
		for _, n := range names {
			if _, _, ok := parsePart(n); ok {
				managed = true
			}
		}
		if !managed {
			continue // user data that happens to use run=/step= folders
		}
		rep.Folders = append(rep.Folders, rel)
		us, err := l.StepUnits(t, run, step)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			d := DroppedUnit{Unit: u}
			if m, err := l.ReadManifest(u); err == nil {
				d.Rows, d.Bytes = m.Rows(), m.Bytes()
			}
			rep.Units = append(rep.Units, d)
		}
	}
	return rep, nil
}

// commitDropJournal creates a drop folder holding j's journal, durably:
// when it returns, the drop is committed. The returned lock is the drop
// folder's writer lock.
func (l *Lake) commitDropJournal(j dropJournal) (string, *os.File, error) {
	staging := filepath.Join(l.Root, StagingDir)
	if err := mkdirAllSync(staging); err != nil {
		return "", nil, err
	}
	run := j.Run
	if len(run) > 64 {
		run = run[:64]
	}
	dir, lock, err := newStagingDir(staging, dropPrefix+run+"."+strconv.FormatInt(j.Step, 10)+".")
	if err != nil {
		return "", nil, err
	}
	buf, err := json.MarshalIndent(j, "", "  ")
	if err == nil {
		err = writeFileSync(filepath.Join(dir, DropJournal+".tmp"), append(buf, '\n'))
	}
	if err == nil && dropCrashHook != nil {
		if err := dropCrashHook(-1); err != nil { // a kill before the commit point
			lock.Close()
			return "", nil, err
		}
	}
	if err == nil {
		err = os.Rename(filepath.Join(dir, DropJournal+".tmp"), filepath.Join(dir, DropJournal))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		unlockRemove(lock, dir+LockSuffix)
		return "", nil, err
	}
	return dir, lock, nil
}

// finishDrop moves each folder (lake-relative) still in the lake into the
// drop folder dir, then deletes dir. Folders already moved are skipped, so
// it may be repeated after a crash.
func (l *Lake) finishDrop(dir string, folders []string) error {
	if dropCrashHook != nil {
		if err := dropCrashHook(0); err != nil {
			return err
		}
	}
	for i, rel := range folders {
		src := l.Path(rel)
		dst := filepath.Join(dir, strconv.Itoa(i))
		err := os.Rename(src, dst)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// moved before a crash
		case err != nil:
			return fmt.Errorf("move %s away: %w", rel, err)
		default:
			if err := syncDir(filepath.Dir(src)); err != nil {
				return err
			}
			_ = os.Remove(filepath.Dir(src)) // the run folder, when now empty
		}
		if dropCrashHook != nil {
			if err := dropCrashHook(i + 1); err != nil {
				return err
			}
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	// The journal goes first: a crash inside RemoveAll then leaves an
	// ordinary staging leftover for gc, never a journal naming folders a
	// later step may have recreated.
	if err := os.Remove(filepath.Join(dir, DropJournal)); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// FinishDrops completes every drop of run interrupted after its commit
// point (see DropStep). The caller holds the run's lock; shards of a run,
// which hold it together, are serialised on each drop folder's lock.
func (l *Lake) FinishDrops(run string) error {
	staging := filepath.Join(l.Root, StagingDir)
	names, err := readNames(staging)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("arrowio: list %s: %w", staging, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasPrefix(n, dropPrefix) || strings.HasSuffix(n, LockSuffix) {
			continue
		}
		if err := l.finishPendingDrop(filepath.Join(staging, n), run); err != nil {
			return fmt.Errorf("arrowio: finish the interrupted drop %s/%s: %w", StagingDir, n, err)
		}
	}
	return nil
}

// finishPendingDrop finishes the drop folder dir when its journal names run.
func (l *Lake) finishPendingDrop(dir, run string) error {
	j, err := readDropJournal(dir)
	if err != nil || j == nil || j.Run != run {
		return err
	}
	lock, err := os.OpenFile(dir+LockSuffix, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	// Wait for another shard finishing the same drop; the kernel drops the
	// lock of a killed drop-step.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return err
	}
	defer unlockRemove(lock, dir+LockSuffix)
	if j, err = readDropJournal(dir); err != nil || j == nil {
		return err // finished meanwhile
	}
	return l.finishDrop(dir, j.Folders)
}

// readDropJournal reads dir's journal; nil when it has none.
func readDropJournal(dir string) (*dropJournal, error) {
	buf, err := os.ReadFile(filepath.Join(dir, DropJournal))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j dropJournal
	if err := json.Unmarshal(buf, &j); err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", DropJournal, err)
	}
	for _, f := range j.Folders {
		if !validDropFolder(f, j.Run, j.Step) {
			return nil, fmt.Errorf("%s names %q, not a step folder of run %s step %d", DropJournal, f, j.Run, j.Step)
		}
	}
	return &j, nil
}

// validDropFolder: f is <table>/run=<run>/step=<step>, nothing else.
func validDropFolder(f, run string, step int64) bool {
	t, rest, ok := strings.Cut(f, "/")
	return ok && validateTable(t) == nil && rest == KeyRun+"="+run+"/"+KeyStep+"="+strconv.FormatInt(step, 10)
}

// isPendingDrop reports whether the staging entry p is a drop folder with
// a journal (gc leaves those to FinishDrops).
func isPendingDrop(p string) bool {
	if !strings.HasPrefix(filepath.Base(p), dropPrefix) {
		return false
	}
	ok, err := exists(filepath.Join(p, DropJournal))
	return ok || err != nil
}
