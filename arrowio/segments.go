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
	"time"
)

// Compaction (issue 9). A long run writes one small Parquet file per table,
// step and call, and DuckDB pays for every file a query opens: a view over
// 1,000 steps costs ~0.1 s per bind and per scan, one over the same rows in
// one file ~5 ms. The table folders cannot hold files of several steps (the
// step of a row is its step=S folder for every Hive reader; DuckDB refuses
// files at another depth), so compaction leaves them as they are and writes
// a read-optimised copy of complete steps beside them:
//
//	_compacted/<table>/<run>/<first>-<last>/{data.parquet, _commit.json}
//
// a segment: the rows of every committed unit of steps first..last of the
// run, with run and step as columns. Ranges are aligned (SegmentSizes: 10
// steps, 100, 1,000, 10,000), so a run of N steps needs at most 9 segments
// per size and fewer than 10 uncompacted steps. rljob's views read a
// segment instead of the step folders it covers (ListTable); every other
// reader globs the table folders and never sees _compacted. A segment is
// committed like a unit (staging, fsync, _commit.json, rename); it lists its
// source units with their rows and file checksums, and lake verify checks
// both the segment's files and that it still covers exactly those units.
// A larger segment supersedes the smaller ones inside it; those are removed
// by lake gc once older than --older-than (a runner reading them keeps its
// file list for one step).

// CompactedDir holds the segments.
const CompactedDir = "_compacted"

// SegmentFile is the data file of a segment.
const SegmentFile = "data.parquet"

// SegmentSourcesFile lists a segment's sources (JSON, []SegmentSource);
// _commit.json names it with its sha256, and readers that only need the
// segment's range and data file never parse it.
const SegmentSourcesFile = "sources.json"

// SummaryTable holds derived segments: per prompt, a summary of the train
// rows of scored (rollouts joined with rewards) in the segment's steps, for
// prompt_stats (sql package; written by rljob lake compact after the
// rollouts and rewards segments). Its segments have the same ranges as
// other segments, no sources (lake verify recomputes them from the rows
// they summarise, in the sql package) and no table folder.
const SummaryTable = "_prompt_summary"

// SegmentSizes are the aligned segment lengths in steps, largest first.
var SegmentSizes = []int64{10000, 1000, 100, 10}

// Segment names the compacted copy of steps First..Last of Run in Table.
type Segment struct {
	Table string `json:"table"`
	Run   string `json:"run"`
	First int64  `json:"first"`
	Last  int64  `json:"last"`
}

// Dir is the segment folder, lake-relative and slash-separated. It has no
// k=v component, so a Hive reader would not take it for a partition.
func (s Segment) Dir() string {
	return CompactedDir + "/" + s.Table + "/" + s.Run + "/" + strconv.FormatInt(s.First, 10) + "-" + strconv.FormatInt(s.Last, 10)
}

func (s Segment) String() string { return s.Dir() }

// Validate checks the names and that the range is one of SegmentSizes,
// aligned.
func (s Segment) Validate() error {
	if s.Table != SummaryTable {
		if err := validateTable(s.Table); err != nil {
			return err
		}
	}
	if err := validatePartition(KeyRun, s.Run); err != nil {
		return err
	}
	n := s.Last - s.First + 1
	for _, size := range SegmentSizes {
		if n == size && s.First >= 0 && s.First%size == 0 {
			return nil
		}
	}
	return fmt.Errorf("arrowio: segment %s: steps %d-%d are not an aligned range of %v steps", s.Table, s.First, s.Last, SegmentSizes)
}

// Covers reports whether step lies in the segment.
func (s Segment) Covers(step int64) bool { return step >= s.First && step <= s.Last }

// SegmentSource is one unit a segment holds: its folder, its Parquet rows,
// and the sha256 of its files as its manifest lists them.
type SegmentSource struct {
	Dir    string   `json:"dir"`
	Rows   int64    `json:"rows"`
	SHA256 []string `json:"sha256"`
}

// SegmentManifest is a segment's _commit.json. Sources is filled by
// LoadSources (from SegmentSourcesFile).
type SegmentManifest struct {
	Segment
	Files        []FileEntry     `json:"files"`
	Sources      []SegmentSource `json:"-"`
	RljobVersion string          `json:"rljob_version"`
	CreatedAt    time.Time       `json:"created_at"`
}

// LoadSources reads the segment's SegmentSourcesFile into Sources.
func (m *SegmentManifest) LoadSources(l *Lake) error {
	buf, err := os.ReadFile(l.Path(m.Dir() + "/" + SegmentSourcesFile))
	if err != nil {
		return fmt.Errorf("arrowio: segment %s: %w", m.Dir(), err)
	}
	var src []SegmentSource
	if err := json.Unmarshal(buf, &src); err != nil {
		return fmt.Errorf("arrowio: segment %s: corrupt %s: %w", m.Dir(), SegmentSourcesFile, err)
	}
	m.Sources = src
	return nil
}

// Path is the absolute path of the segment's data file.
func (m *SegmentManifest) Path(l *Lake) string { return l.Path(m.Dir() + "/" + SegmentFile) }

// Segments reads the committed segments of table (every run), sorted by
// (run, first, last). Folders without a readable manifest are skipped
// (lake verify reports them).
func (l *Lake) Segments(table string) ([]*SegmentManifest, error) {
	return l.SegmentsCached(table, nil)
}

// SegmentsCached is Segments reading manifests through c (nil: no cache).
func (l *Lake) SegmentsCached(table string, c *ListCache) ([]*SegmentManifest, error) {
	root := filepath.Join(l.Root, CompactedDir, table)
	runs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio: list segments of %s: %w", table, err)
	}
	var out []*SegmentManifest
	for _, r := range runs {
		if !r.IsDir() {
			continue
		}
		segs, err := os.ReadDir(filepath.Join(root, r.Name()))
		if err != nil {
			return nil, fmt.Errorf("arrowio: list segments of %s: %w", table, err)
		}
		for _, s := range segs {
			if !s.IsDir() {
				continue
			}
			m, err := c.segmentManifest(filepath.Join(root, r.Name(), s.Name(), ManifestName))
			if err != nil || m.Table != table || m.Run != r.Name() || filepath.Base(m.Dir()) != s.Name() {
				continue
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Run != b.Run {
			return a.Run < b.Run
		}
		if a.First != b.First {
			return a.First < b.First
		}
		return a.Last < b.Last
	})
	return out, nil
}

func readSegmentManifest(p string) (*SegmentManifest, error) {
	buf, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m SegmentManifest
	if err := json.Unmarshal(buf, &m); err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", p, err)
	}
	return &m, nil
}

// ChooseSegments picks the segments a reader uses: largest first, skipping
// any that overlaps one already picked (a smaller segment superseded by a
// larger one, or a leftover of an interrupted gc), so no step is read
// twice. The result is sorted by (run, first).
func ChooseSegments(segs []*SegmentManifest) []*SegmentManifest {
	c := append([]*SegmentManifest(nil), segs...)
	sort.SliceStable(c, func(i, j int) bool {
		a, b := c[i], c[j]
		if la, lb := a.Last-a.First, b.Last-b.First; la != lb {
			return la > lb
		}
		if a.Run != b.Run {
			return a.Run < b.Run
		}
		return a.First < b.First
	})
	var out []*SegmentManifest
	for _, s := range c {
		overlap := false
		for _, p := range out {
			if p.Run == s.Run && s.First <= p.Last && p.First <= s.Last {
				overlap = true
				break
			}
		}
		if !overlap {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Run != out[j].Run {
			return out[i].Run < out[j].Run
		}
		return out[i].First < out[j].First
	})
	return out
}

// ListTable lists a table's files: the segments use accepts, less
// overlapping ones (ChooseSegments), and the Parquet files of every step
// folder run=R/step=S that none of them covers. Files inside a folder that
// looks like a unit (part-<call>-<shard>) but has no _commit.json are
// half-written debris and are left out; other loose files (user data) are
// listed with InUnit false. Read together, segments and files hold every
// committed row once. With glob set, the files listed outside segments are
// every Parquet file, as a glob of the folder finds them (debris included).
func (l *Lake) ListTable(table string, use func(*SegmentManifest) bool, glob bool) ([]DataFile, []*SegmentManifest, error) {
	return l.ListTableCached(table, use, glob, nil)
}

// ListTableCached is ListTable reading through c (see ListCache; nil: no
// cache). With glob set only segment manifests are cached.
func (l *Lake) ListTableCached(table string, use func(*SegmentManifest) bool, glob bool, c *ListCache) ([]DataFile, []*SegmentManifest, error) {
	all, err := l.SegmentsCached(table, c)
	if err != nil {
		return nil, nil, err
	}
	var usable []*SegmentManifest
	for _, s := range all {
		if use == nil || use(s) {
			usable = append(usable, s)
		}
	}
	segs := ChooseSegments(usable)
	byRun := map[string][]*SegmentManifest{}
	for _, s := range segs {
		byRun[s.Run] = append(byRun[s.Run], s)
	}
	root := filepath.Join(l.Root, table)
	var out []DataFile
	outp := &out
	var visit fs.WalkDirFunc
	// walk lists the files under p (the walk below, from p) for the cache.
	walk := func(p string) ([]DataFile, error) {
		var got []DataFile
		saved := outp
		outp = &got
		err := filepath.WalkDir(p, visit)
		outp = saved
		return got, err
	}
	visit = func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && strings.HasPrefix(name, ".") {
				return fs.SkipDir
			}
			if covered(root, p, name, byRun) {
				return fs.SkipDir
			}
			if run, ok := parseKey(name, KeyRun); ok && c != nil && c.Run == run && !glob && filepath.Dir(p) == root {
				if err := l.listCachedRun(c, table, p, byRun[run], walk, outp); err != nil {
					return err
				}
				return fs.SkipDir
			}
			if run, ok := parseKey(name, KeyRun); ok && len(byRun[run]) > 0 && filepath.Dir(p) == root {
				// A compacted run: names only (no sort, no stat of the
				// thousands of covered step folders), then walk the rest.
				return walkUncovered(root, p, byRun, visit)
			}
			if call, shard, ok := parsePart(name); ok && !glob {
				return l.unitFiles(p, call, shard, outp)
			}
			return nil
		}
		if strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, ".") && d.Type().IsRegular() {
			*outp = append(*outp, fileKeys(root, p, DataFile{Path: p}))
		}
		return nil
	}
	if err := filepath.WalkDir(root, visit); err != nil {
		return nil, nil, fmt.Errorf("arrowio: list table %s: %w", table, err)
	}
	return out, segs, nil
}

// walkUncovered walks the entries of the run folder runDir that no segment
// covers, in name order, and returns fs.SkipDir for runDir.
func walkUncovered(root, runDir string, byRun map[string][]*SegmentManifest, visit fs.WalkDirFunc) error {
	names, err := readNames(runDir)
	if err != nil {
		return err
	}
	var rest []string
	for _, n := range names {
		if !covered(root, filepath.Join(runDir, n), n, byRun) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		if err := filepath.WalkDir(filepath.Join(runDir, n), visit); err != nil {
			return err
		}
	}
	return fs.SkipDir
}

// covered reports whether the folder p (named name) is <root>/run=R/step=S
// with S inside one of R's segments.
func covered(root, p, name string, byRun map[string][]*SegmentManifest) bool {
	if len(byRun) == 0 {
		return false
	}
	v, ok := parseKey(name, KeyStep)
	if !ok {
		return false
	}
	step, ok := canonicalStep(v)
	if !ok {
		return false
	}
	parent := filepath.Dir(p)
	run, ok := parseKey(filepath.Base(parent), KeyRun)
	if !ok || filepath.Dir(parent) != root {
		return false
	}
	for _, s := range byRun[run] {
		if s.Covers(step) {
			return true
		}
	}
	return false
}

// StagedSegment is a segment being written under _staging/.
type StagedSegment struct {
	lake *Lake
	seg  Segment
	dir  string
	lock *os.File
	done bool
}

// BeginSegment starts writing seg: a fresh staging folder (locked like a
// unit's, so gc leaves it alone while its writer lives) into which the
// caller writes SegmentFile, then Commit.
func (l *Lake) BeginSegment(seg Segment) (*StagedSegment, error) {
	if err := seg.Validate(); err != nil {
		return nil, err
	}
	staging := filepath.Join(l.Root, StagingDir)
	if err := mkdirAllSync(staging); err != nil {
		return nil, fmt.Errorf("arrowio: begin %s: %w", seg, err)
	}
	run := seg.Run
	if len(run) > 64 {
		run = run[:64]
	}
	dir, lock, err := newStagingDir(staging, fmt.Sprintf("compact.%s.%s.%d.%d.", seg.Table, run, seg.First, seg.Last))
	if err != nil {
		return nil, fmt.Errorf("arrowio: begin %s: %w", seg, err)
	}
	return &StagedSegment{lake: l, seg: seg, dir: dir, lock: lock}, nil
}

// Path is the staging folder; write SegmentFile into it.
func (s *StagedSegment) Path() string { return s.dir }

// Commit publishes the segment: it checks that the staging folder holds
// SegmentFile alone with as many rows as sources add up to, fsyncs it,
// writes _commit.json, renames the folder onto Segment.Dir() without
// replacing anything and fsyncs the parent. An existing segment wraps
// ErrAlreadyCommitted. On any error nothing is published and the staging
// folder is removed.
func (s *StagedSegment) Commit(sources []SegmentSource) (*SegmentManifest, error) {
	if s.done {
		return nil, fmt.Errorf("arrowio: commit %s: already committed or aborted", s.seg)
	}
	s.done = true
	defer unlockRemove(s.lock, s.dir+LockSuffix)
	m, err := s.commit(sources)
	if err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, fmt.Errorf("arrowio: commit %s: %w", s.seg, err)
	}
	return m, nil
}

func (s *StagedSegment) commit(sources []SegmentSource) (*SegmentManifest, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var extra []FileEntry // MarkerPrintsFile, in a steps segment
	for _, ent := range ents {
		switch {
		case !ent.Type().IsRegular():
		case ent.Name() == SegmentFile:
			continue
		case ent.Name() == MarkerPrintsFile && s.seg.Table == TableSteps:
			pe, err := hashFile(filepath.Join(s.dir, MarkerPrintsFile), false)
			if err != nil {
				return nil, err
			}
			pe.Name = MarkerPrintsFile
			extra = append(extra, pe)
			continue
		}
		return nil, fmt.Errorf("staging folder %s holds %s: only %s (and %s in a steps segment) may be there", s.dir, ent.Name(), SegmentFile, MarkerPrintsFile)
	}
	e, err := hashFile(filepath.Join(s.dir, SegmentFile), true)
	if err != nil {
		return nil, err
	}
	e.Name = SegmentFile
	var want int64
	for _, src := range sources {
		want += src.Rows
	}
	if e.Rows != want && s.seg.Table != SummaryTable {
		return nil, fmt.Errorf("%s has %d rows, its sources %d", SegmentFile, e.Rows, want)
	}
	sbuf, err := json.Marshal(sources)
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(s.dir, SegmentSourcesFile), append(sbuf, '\n')); err != nil {
		return nil, err
	}
	se, err := hashFile(filepath.Join(s.dir, SegmentSourcesFile), false)
	if err != nil {
		return nil, err
	}
	se.Name = SegmentSourcesFile
	files := append(append([]FileEntry{e}, extra...), se)
	m := &SegmentManifest{Segment: s.seg, Files: files, Sources: sources, RljobVersion: Version, CreatedAt: time.Now().UTC()}
	buf, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	buf = append(buf, '\n')
	if err := writeFileSync(filepath.Join(s.dir, ManifestName), buf); err != nil {
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	final := s.lake.Path(s.seg.Dir())
	if err := mkdirAllSync(filepath.Dir(final)); err != nil {
		return nil, err
	}
	// Last look before the rename: every file is there with its size.
	for _, f := range append(files, FileEntry{Name: ManifestName, Bytes: int64(len(buf))}) {
		if fi, err := os.Stat(filepath.Join(s.dir, f.Name)); err != nil || fi.Size() != f.Bytes {
			return nil, fmt.Errorf("%s changed in the staging folder %s before the rename; nothing committed", f.Name, s.dir)
		}
	}
	if err := renameNoReplace(s.dir, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrAlreadyCommitted
		}
		return nil, err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return nil, err
	}
	return m, syncDir(filepath.Dir(s.dir))
}

// Abort discards the staging folder (a no-op after Commit or Abort).
func (s *StagedSegment) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	defer unlockRemove(s.lock, s.dir+LockSuffix)
	return os.RemoveAll(s.dir)
}

// SegmentSourceOf describes the committed unit u as a segment source.
func (l *Lake) SegmentSourceOf(u Unit) (SegmentSource, error) {
	m, err := l.ReadManifest(u)
	if err != nil {
		return SegmentSource{}, err
	}
	src := SegmentSource{Dir: u.Dir(), Rows: m.Rows()}
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".parquet") {
			src.SHA256 = append(src.SHA256, f.SHA256)
		}
	}
	return src, nil
}

// StepFolderClean reports whether the step folder of (table, run, step)
// holds committed units only (or does not exist): a step with a loose file,
// a half-written unit or anything else is not compacted, since a reader of
// the segment would not see it.
func (l *Lake) StepFolderClean(table, run string, step int64) (bool, error) {
	dir := l.Path(Unit{Table: table, Run: run, Step: step}.PartDir())
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if _, _, ok := parsePart(e.Name()); !ok || !e.IsDir() {
			return false, nil
		}
		if ok, err := exists(filepath.Join(dir, e.Name(), ManifestName)); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// Superseded lists the segments of table that a larger one covers
// (ChooseSegments leaves them out) and that gc may remove once the larger
// one is older than its age rule.
func (l *Lake) superseded(table string) (dead []*SegmentManifest, by map[*SegmentManifest]*SegmentManifest, err error) {
	all, err := l.Segments(table)
	if err != nil {
		return nil, nil, err
	}
	chosen := ChooseSegments(all)
	in := map[*SegmentManifest]bool{}
	for _, c := range chosen {
		in[c] = true
	}
	by = map[*SegmentManifest]*SegmentManifest{}
	for _, s := range all {
		if in[s] {
			continue
		}
		for _, c := range chosen {
			if c.Run == s.Run && c.First <= s.First && s.Last <= c.Last {
				dead = append(dead, s)
				by[s] = c
				break
			}
		}
	}
	return dead, by, nil
}

// GCSegments removes the segments superseded by a larger one committed more
// than olderThan ago and returns their folders. A segment is moved into
// _staging before it is deleted, so it vanishes at once.
func (l *Lake) GCSegments(olderThan time.Duration) ([]string, error) {
	tables, err := os.ReadDir(filepath.Join(l.Root, CompactedDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("arrowio: gc segments: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var removed []string
	for _, t := range tables {
		if !t.IsDir() {
			continue
		}
		dead, by, err := l.superseded(t.Name())
		if err != nil {
			return removed, err
		}
		for _, s := range dead {
			if !by[s].CreatedAt.Before(cutoff) {
				continue
			}
			if err := l.removeSegment(s.Segment); err != nil {
				return removed, err
			}
			removed = append(removed, s.Dir())
		}
	}
	return removed, nil
}

// removeSegment renames the segment folder into _staging (atomic: readers
// see it or not) and deletes it there.
func (l *Lake) removeSegment(s Segment) error {
	tmp := filepath.Join(l.Root, StagingDir, fmt.Sprintf("gc.%s.%s.%d.%d", s.Table, s.Run, s.First, s.Last))
	_ = os.RemoveAll(tmp)
	if err := os.Rename(l.Path(s.Dir()), tmp); err != nil {
		return fmt.Errorf("arrowio: remove %s: %w", s.Dir(), err)
	}
	if err := syncDir(filepath.Dir(l.Path(s.Dir()))); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}
