package arrowio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Problem is one integrity failure found by Verify, naming the file.
type Problem struct {
	Path string // lake-relative, slash-separated
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// Report is the full result of VerifyReport.
type Report struct {
	Checked   int       // commit units checked
	Problems  []Problem // failures: lake verify must exit non-zero when any
	Unmanaged []string  // files outside commit units in user tables (warnings: read by the views, not checked)
}

// Verify checks every commit unit of the lake and returns how many were
// checked and the problems found (see VerifyReport). err is reserved for
// failures to read the lake itself.
func (l *Lake) Verify() (checked int, problems []Problem, err error) {
	r, err := l.VerifyReport()
	if err != nil {
		return 0, nil, err
	}
	return r.Checked, r.Problems, nil
}

// VerifyReport checks every commit unit of every table folder (_staging and
// _locks are skipped):
//   - _commit.json parses and names the unit of the folder it lies in;
//   - every listed file exists with the listed size and sha256, and a
//     .parquet file's footer has the listed row count;
//   - no file lies in the unit that the manifest does not list.
//
// A file outside any unit is a problem in the tables rljob writes (rollouts,
// rewards, metrics, checkpoints) and is listed in Unmanaged elsewhere
// (prompts and other user tables: user-placed data, a warning). Hidden files
// (".x") are ignored.
func (l *Lake) VerifyReport() (*Report, error) {
	r := &Report{}
	err := l.walk(func(table, rel string) {
		r.Checked++
		r.Problems = append(r.Problems, l.checkUnit(rel)...)
	}, func(table, rel string, _ fs.FileInfo) {
		switch {
		case managedTables[table]:
			r.Problems = append(r.Problems, Problem{rel, "file outside a commit unit (no " + ManifestName + " in its folder): remove it or move it to a user table"})
		default:
			r.Unmanaged = append(r.Unmanaged, rel)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := l.verifySegments(r); err != nil {
		return nil, err
	}
	if err := l.verifyMarkers(r); err != nil {
		return nil, err
	}
	return r, nil
}

// walk calls unit for every commit unit folder (one holding _commit.json,
// not descended further) and loose for every other regular, non-hidden file,
// in lexical order. rel paths are lake-relative and slash-separated.
func (l *Lake) walk(unit func(table, rel string), loose func(table, rel string, fi fs.FileInfo)) error {
	tops, err := os.ReadDir(l.Root)
	if err != nil {
		return fmt.Errorf("arrowio: read lake %s: %w", l.Root, err)
	}
	var visit func(table, rel string) error
	visit = func(table, rel string) error {
		ents, err := os.ReadDir(l.Path(rel))
		if err != nil {
			return fmt.Errorf("arrowio: read %s: %w", rel, err)
		}
		for _, e := range ents {
			if e.Name() == ManifestName && !e.IsDir() {
				unit(table, rel)
				return nil
			}
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			child := rel + "/" + name
			switch {
			case e.IsDir():
				if err := visit(table, child); err != nil {
					return err
				}
			case e.Type().IsRegular():
				fi, err := e.Info()
				if err != nil {
					return fmt.Errorf("arrowio: stat %s: %w", child, err)
				}
				loose(table, child, fi)
			}
		}
		return nil
	}
	for _, t := range tops {
		name := t.Name()
		if !t.IsDir() || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") {
			continue
		}
		if err := visit(name, name); err != nil {
			return err
		}
	}
	return nil
}

// checkUnit verifies the unit folder rel against its manifest.
func (l *Lake) checkUnit(rel string) []Problem {
	var ps []Problem
	add := func(p, format string, args ...any) { ps = append(ps, Problem{p, fmt.Sprintf(format, args...)}) }
	mpath := rel + "/" + ManifestName
	m, err := readManifest(l.Path(mpath))
	if err != nil {
		add(mpath, "corrupt manifest: %v", errors.Unwrap(err))
		return ps
	}
	if err := m.Unit.Validate(); err != nil {
		add(mpath, "manifest names an invalid unit: %v", err)
		return ps
	}
	if d := m.Unit.Dir(); d != rel {
		add(mpath, "manifest describes unit %s but lies in %s", d, rel)
	}
	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		if checkFileName(f.Name) != nil {
			add(mpath, "manifest lists a bad file name %q", f.Name)
			continue
		}
		listed[f.Name] = true
		fp := rel + "/" + f.Name
		got, err := hashFile(l.Path(fp), false)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			add(fp, "missing (listed in %s)", ManifestName)
		case got.SHA256 == "":
			add(fp, "unreadable: %v", err)
		case got.Bytes != f.Bytes:
			add(fp, "size %d bytes, manifest says %d (truncated or rewritten)", got.Bytes, f.Bytes)
		case got.SHA256 != f.SHA256:
			add(fp, "sha256 %s, manifest says %s (corrupted)", got.SHA256, f.SHA256)
		case err != nil:
			add(fp, "unreadable Parquet: %v", err)
		case got.Rows != f.Rows:
			add(fp, "%d rows in the Parquet footer, manifest says %d", got.Rows, f.Rows)
		}
	}
	err = filepath.WalkDir(l.Path(rel), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, err := filepath.Rel(l.Path(rel), p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(r); !listed[name] {
			add(rel+"/"+name, "not listed in %s", ManifestName)
		}
		return nil
	})
	if err != nil {
		add(rel, "unreadable: %v", err)
	}
	return ps
}

// TableSummary is one (table, run) of List. Unmanaged rows summarise
// user-placed Parquet outside commit units (Run and steps from run=/step=
// folders in their path when present); their Units is 0.
type TableSummary struct {
	Table     string
	Run       string
	Units     int   // committed units
	Steps     int   // distinct steps
	MinStep   int64 // valid when Steps > 0
	MaxStep   int64
	Files     int
	Rows      int64 // from manifests (unmanaged: Parquet footers)
	Bytes     int64
	Unmanaged bool
}

// List summarises the lake per table and run from the manifests (staging
// ignored, corrupt manifests skipped: Verify reports them), sorted by table,
// unmanaged last, then run.
func (l *Lake) List() ([]TableSummary, error) {
	type key struct {
		table, run string
		unmanaged  bool
	}
	sums := map[key]*TableSummary{}
	steps := map[key]map[int64]bool{}
	get := func(k key) *TableSummary {
		s, ok := sums[k]
		if !ok {
			s = &TableSummary{Table: k.table, Run: k.run, Unmanaged: k.unmanaged}
			sums[k] = s
			steps[k] = map[int64]bool{}
		}
		return s
	}
	err := l.walk(func(table, rel string) {
		m, err := readManifest(l.Path(rel + "/" + ManifestName))
		if err != nil || m.Unit.Dir() != rel {
			return
		}
		k := key{table: table, run: m.Run}
		s := get(k)
		s.Units++
		s.Files += len(m.Files)
		s.Rows += m.Rows()
		s.Bytes += m.Bytes()
		steps[k][m.Step] = true
	}, func(table, rel string, fi fs.FileInfo) {
		if managedTables[table] || !strings.HasSuffix(rel, ".parquet") {
			return
		}
		run, step, hasStep := hiveKeys(rel)
		k := key{table: table, run: run, unmanaged: true}
		s := get(k)
		s.Files++
		s.Bytes += fi.Size()
		if n, err := ParquetRows(l.Path(rel)); err == nil {
			s.Rows += n
		}
		if hasStep {
			steps[k][step] = true
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]TableSummary, 0, len(sums))
	for k, s := range sums {
		for st := range steps[k] {
			if s.Steps == 0 || st < s.MinStep {
				s.MinStep = st
			}
			if s.Steps == 0 || st > s.MaxStep {
				s.MaxStep = st
			}
			s.Steps++
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Unmanaged != b.Unmanaged {
			return !a.Unmanaged
		}
		return a.Run < b.Run
	})
	return out, nil
}

// hiveKeys extracts run=R and step=S folder values from a slash path.
func hiveKeys(rel string) (run string, step int64, hasStep bool) {
	for _, c := range strings.Split(path.Dir(rel), "/") {
		if v, ok := parseKey(c, KeyRun); ok {
			run = v
		} else if v, ok := parseKey(c, KeyStep); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				step, hasStep = n, true
			}
		}
	}
	return run, step, hasStep
}

// GC removes the entries of _staging whose newest modification (of the
// entry or anything inside it) is older than olderThan, and returns their
// lake-relative paths. A folder whose writer is alive is never removed,
// whatever its age: its lock file (<folder>.lock, see LockSuffix) is
// flocked by the writer, and GC removes a folder only while holding that
// lock itself. Folders without a lock file (left by an older rljob) fall
// under the age rule alone; using the newest time inside keeps a writer's
// folder alive as long as it keeps writing. Lock files whose folder is gone
// are removed once unlocked and older than olderThan. A drop folder with
// its journal (an interrupted drop-step, see DropStep) is left to
// FinishDrops.
func (l *Lake) GC(olderThan time.Duration) ([]string, error) {
	if olderThan < 0 {
		return nil, fmt.Errorf("arrowio: gc: negative age %v", olderThan)
	}
	dir := filepath.Join(l.Root, StagingDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio: gc: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var removed []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		isLock := strings.HasSuffix(e.Name(), LockSuffix) && e.Type().IsRegular()
		if isLock {
			if ok, err := exists(strings.TrimSuffix(p, LockSuffix)); ok || err != nil {
				continue // handled with its folder
			}
		} else if _, err := os.Lstat(p + LockSuffix); err == nil {
			// A lock file: the folder is removable only while we hold it.
		} else if !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("arrowio: gc %s: %w", e.Name(), err)
		}
		if isPendingDrop(strings.TrimSuffix(p, LockSuffix)) {
			continue // an interrupted drop-step: FinishDrops completes it
		}
		ok, err := l.gcEntry(p, isLock, cutoff)
		if err != nil {
			return removed, fmt.Errorf("arrowio: gc %s: %w", e.Name(), err)
		}
		if ok {
			removed = append(removed, StagingDir+"/"+e.Name())
		}
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			return removed, fmt.Errorf("arrowio: gc: %w", err)
		}
	}
	return removed, nil
}

// gcEntry removes the staging entry p (a folder, a stray file, or an
// orphan lock file when isLock) if it is older than cutoff and, when it has
// a lock file, that lock can be taken; it reports whether it removed it.
func (l *Lake) gcEntry(p string, isLock bool, cutoff time.Time) (bool, error) {
	lockPath := p + LockSuffix
	if isLock {
		lockPath = p
	}
	lock, err := os.OpenFile(lockPath, os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if isLock {
			return false, nil // removed meanwhile
		}
		lock = nil // no lock file: the age rule alone
	case err != nil:
		return false, err
	default:
		defer lock.Close()
		if locked, err := tryLock(lock); err != nil || !locked {
			return false, err // a live writer, or no locks on this file system
		}
		if !samePath(lock, lockPath) {
			return false, nil // its writer finished and removed it meanwhile
		}
	}
	newest, err := newestModTime(p)
	if errors.Is(err, fs.ErrNotExist) {
		if lock != nil {
			_ = os.Remove(lockPath)
		}
		return false, nil // removed meanwhile (committed or aborted)
	}
	if err != nil {
		return false, err
	}
	if !newest.Before(cutoff) {
		return false, nil
	}
	if err := os.RemoveAll(p); err != nil {
		return false, err
	}
	if lock != nil && !isLock {
		if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, err
		}
	}
	return true, nil
}

func newestModTime(root string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	return newest, err
}

// fileSHA256 is the hex sha256 of a file (tests).
func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifySegments checks every folder under _compacted: its manifest, its
// data file (size, sha256, rows = the sum of its sources), and that it still
// covers exactly its sources: each listed unit is committed with the rows
// and checksums recorded, and every committed unit of its steps is listed,
// with nothing else in those step folders (a file there would be hidden
// from rljob's views by the segment).
func (l *Lake) verifySegments(r *Report) error {
	root := filepath.Join(l.Root, CompactedDir)
	tables, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("arrowio: read %s: %w", CompactedDir, err)
	}
	for _, t := range tables {
		if !t.IsDir() {
			r.Problems = append(r.Problems, Problem{CompactedDir + "/" + t.Name(), "not a segment folder"})
			continue
		}
		runs, err := os.ReadDir(filepath.Join(root, t.Name()))
		if err != nil {
			return fmt.Errorf("arrowio: read %s: %w", CompactedDir, err)
		}
		for _, run := range runs {
			segs, err := os.ReadDir(filepath.Join(root, t.Name(), run.Name()))
			if err != nil {
				r.Problems = append(r.Problems, Problem{CompactedDir + "/" + t.Name() + "/" + run.Name(), "not a segment folder"})
				continue
			}
			for _, s := range segs {
				rel := CompactedDir + "/" + t.Name() + "/" + run.Name() + "/" + s.Name()
				r.Checked++
				r.Problems = append(r.Problems, l.checkSegment(rel, t.Name(), run.Name())...)
			}
		}
	}
	return nil
}

func (l *Lake) checkSegment(rel, table, run string) []Problem {
	var ps []Problem
	add := func(p, format string, args ...any) { ps = append(ps, Problem{p, fmt.Sprintf(format, args...)}) }
	mpath := rel + "/" + ManifestName
	m, err := readSegmentManifest(l.Path(mpath))
	if err != nil {
		add(mpath, "corrupt or missing segment manifest: %v", err)
		return ps
	}
	if err := m.Segment.Validate(); err != nil {
		add(mpath, "names an invalid segment: %v", err)
		return ps
	}
	if m.Dir() != rel || m.Table != table || m.Run != run {
		add(mpath, "describes segment %s but lies in %s", m.Dir(), rel)
		return ps
	}
	listed := map[string]bool{ManifestName: true}
	var dataRows int64
	for _, f := range m.Files {
		listed[f.Name] = true
		fp := rel + "/" + f.Name
		got, err := hashFile(l.Path(fp), false)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			add(fp, "missing (listed in %s)", ManifestName)
		case got.SHA256 == "":
			add(fp, "unreadable: %v", err)
		case got.Bytes != f.Bytes || got.SHA256 != f.SHA256:
			add(fp, "size %d sha256 %s, manifest says %d %s (corrupted)", got.Bytes, got.SHA256, f.Bytes, f.SHA256)
		case err != nil:
			add(fp, "unreadable Parquet: %v", err)
		case got.Rows != f.Rows:
			add(fp, "%d rows in the Parquet footer, manifest says %d", got.Rows, f.Rows)
		}
		dataRows += f.Rows
	}
	if ents, err := os.ReadDir(l.Path(rel)); err == nil {
		for _, e := range ents {
			if !listed[e.Name()] {
				add(rel+"/"+e.Name(), "not listed in %s", ManifestName)
			}
		}
	}
	if err := m.LoadSources(l); err != nil {
		add(rel+"/"+SegmentSourcesFile, "%v", err)
		return ps
	}
	if table == SummaryTable {
		return ps // derived rows: the sql package recomputes them (sql.VerifySummaries)
	}
	var srcRows int64
	sources := map[string]SegmentSource{}
	for _, src := range m.Sources {
		srcRows += src.Rows
		sources[src.Dir] = src
	}
	if srcRows != dataRows {
		add(mpath, "%s holds %d rows, its sources %d", SegmentFile, dataRows, srcRows)
	}
	for step := m.First; step <= m.Last; step++ {
		units, err := l.StepUnits(table, run, step)
		if err != nil {
			add(rel, "cannot list step %d: %v", step, err)
			continue
		}
		for _, u := range units {
			src, ok := sources[u.Dir()]
			if !ok {
				add(u.Dir(), "committed in step %d, which segment %s covers, but not in it (rljob's views would not see it): remove the segment folder", step, rel)
				continue
			}
			delete(sources, u.Dir())
			now, err := l.SegmentSourceOf(u)
			if err != nil {
				add(u.Dir(), "unreadable manifest: %v", err)
				continue
			}
			if now.Rows != src.Rows || strings.Join(now.SHA256, ",") != strings.Join(src.SHA256, ",") {
				add(u.Dir(), "differs from the copy in segment %s (%d rows, it recorded %d): remove the segment folder", rel, now.Rows, src.Rows)
			}
		}
		if clean, err := l.StepFolderClean(table, run, step); err == nil && !clean {
			add(Unit{Table: table, Run: run, Step: step}.PartDir(), "holds files outside committed units, hidden from rljob's views by segment %s: remove the segment folder", rel)
		}
	}
	for dir := range sources {
		add(dir, "listed in segment %s but no longer committed: remove the segment folder", rel)
	}
	return ps
}

// verifyMarkers reads every run's step markers as the runner does
// (ReadStepStatus) and reports the marker it refuses: copied or moved to
// another step, deleted before a complete step, or left without its
// manifest. So lake verify and rljob run agree on every marker.
func (l *Lake) verifyMarkers(r *Report) error {
	runs, err := l.Runs(TableSteps)
	if err != nil {
		return err
	}
	for _, run := range runs {
		if ValidatePartitionValue(run) != nil {
			continue
		}
		_, err := l.ReadStepStatus(run)
		var me *MarkerError
		switch {
		case errors.As(err, &me):
			r.Problems = append(r.Problems, Problem{Path: me.Dir, Msg: "step marker: " + me.Msg})
		case err != nil:
			return err
		}
	}
	return nil
}
