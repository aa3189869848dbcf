package arrowio

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Reserved names in the lake.
const (
	ManifestName = "_commit.json" // the manifest in every commit unit
	StagingDir   = "_staging"     // units being written
	LocksDir     = "_locks"       // flock files (package jobs)
)

// ErrAlreadyCommitted is wrapped by Staged.Commit when the unit already
// exists in the lake; the staged copy has been discarded and the committed
// unit is untouched.
var ErrAlreadyCommitted = errors.New("unit already committed")

// Lake is a lake folder (see the package doc for its layout).
type Lake struct {
	Root string
}

// OpenLake opens the lake at root, creating root, _staging and _locks when
// missing (each new folder fsynced into its parent).
func OpenLake(root string) (*Lake, error) {
	if root == "" {
		return nil, errors.New("arrowio: open lake: empty path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("arrowio: open lake %s: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, StagingDir), filepath.Join(abs, LocksDir)} {
		if err := mkdirAllSync(d); err != nil {
			return nil, fmt.Errorf("arrowio: open lake %s: %w", root, err)
		}
	}
	return &Lake{Root: abs}, nil
}

// Path turns a slash-separated lake-relative path into a file path.
func (l *Lake) Path(rel string) string { return filepath.Join(l.Root, filepath.FromSlash(rel)) }

// FileEntry is one file of a commit unit. Rows is the Parquet row count (0
// for other files); SHA256 is lower-case hex.
type FileEntry struct {
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Manifest is the content of a unit's _commit.json: the unit, its files,
// the rljob version, the stage arguments given to Begin, and the commit time
// (UTC). Read back, numbers in Args are json.Number (exact for int64 seeds).
type Manifest struct {
	Unit
	Files        []FileEntry    `json:"files"`
	RljobVersion string         `json:"rljob_version"`
	Args         map[string]any `json:"args,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
}

// Rows is the sum of the files' row counts.
func (m *Manifest) Rows() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Rows
	}
	return n
}

// Bytes is the sum of the files' sizes.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Bytes
	}
	return n
}

// Staged is a commit unit being written under _staging/<unique>/. It is not
// safe for concurrent use; several Staged of the same unit may race, and at
// most one of them commits.
type Staged struct {
	lake  *Lake
	unit  Unit
	args  map[string]any
	dir   string
	lock  *os.File             // dir + ".lock", flocked while the writer lives (see GC)
	files map[string]FileEntry // written through WriteRecords/WriteFile, already fsynced
	done  bool
}

// Begin starts writing unit u: it validates u and creates a fresh staging
// folder. args (stage arguments) are recorded in the manifest; they must
// marshal to JSON.
func (l *Lake) Begin(u Unit, args map[string]any) (*Staged, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if _, err := json.Marshal(args); err != nil {
		return nil, fmt.Errorf("arrowio: begin %s: stage arguments: %w", u, err)
	}
	staging := filepath.Join(l.Root, StagingDir)
	if err := mkdirAllSync(staging); err != nil {
		return nil, fmt.Errorf("arrowio: begin %s: %w", u, err)
	}
	run := u.Run
	if len(run) > 64 {
		run = run[:64]
	}
	prefix := fmt.Sprintf("%s.%s.%d.%d.%d.", u.Table, run, u.Step, u.Call, u.Shard)
	dir, lock, err := newStagingDir(staging, prefix)
	if err != nil {
		return nil, fmt.Errorf("arrowio: begin %s: %w", u, err)
	}
	return &Staged{lake: l, unit: u, args: args, dir: dir, lock: lock, files: map[string]FileEntry{}}, nil
}

// LockSuffix names the lock file beside each staging folder:
// _staging/<unique>.lock holds an exclusive flock for as long as the writer
// of _staging/<unique>/ lives (the kernel drops it when the process dies).
// GC never removes a folder whose lock it cannot take.
const LockSuffix = ".lock"

// newStagingDir creates staging/<prefix><random>/ (mode 0777 less the umask)
// after creating and flocking its lock file, so that the folder never exists
// without a held lock while its writer lives.
func newStagingDir(staging, prefix string) (dir string, lock *os.File, err error) {
	for try := 0; try < 100; try++ {
		var rnd [8]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return "", nil, err
		}
		dir = filepath.Join(staging, prefix+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(dir+LockSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			os.Remove(dir + LockSuffix)
			return "", nil, err
		}
		if !locked || !samePath(f, dir+LockSuffix) {
			// gc took the fresh lock file for an orphan (or removed it)
			// between our create and flock: leave it to gc, pick another name.
			f.Close()
			continue
		}
		if err := os.Mkdir(dir, 0o777); err != nil {
			unlockRemove(f, dir+LockSuffix)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return "", nil, err
		}
		return dir, f, nil
	}
	return "", nil, fmt.Errorf("cannot create a staging folder in %s", staging)
}

// tryLock takes f's exclusive flock without waiting: false when another
// open file holds it, an error when the file system cannot lock (a network
// file system mounted without flock support).
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN):
		return false, nil
	}
	return false, fmt.Errorf("flock %s: %w (the lake must be on a file system with flock support; on Lustre mount with -o flock)", f.Name(), err)
}

// samePath reports whether p still names the file f has open (it was not
// removed or replaced since f was opened).
func samePath(f *os.File, p string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(p)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// unlockRemove removes the lock file at p while holding its flock, then
// closes it (which drops the flock).
func unlockRemove(f *os.File, p string) {
	if f == nil {
		return
	}
	_ = os.Remove(p)
	_ = f.Close()
}

// Unit is the unit being written.
func (s *Staged) Unit() Unit { return s.unit }

// Path is the staging folder. An external command may write files into it
// before Commit; Commit hashes and fsyncs them like its own.
func (s *Staged) Path() string { return s.dir }

// WriteRecords writes rr as the Parquet file name in the unit (name "":
// Unit.FileName()) and returns its row count. The file schema is sch (nil:
// rr's schema) minus any top-level run and step columns, which live in the
// path; record columns are matched to it by name (extra columns are dropped,
// a missing or mistyped column is a *ColumnError). The file is fsynced
// before WriteRecords returns.
func (s *Staged) WriteRecords(name string, sch *arrow.Schema, rr array.RecordReader) (rows int64, err error) {
	if name == "" {
		name = s.unit.FileName()
	}
	if sch == nil {
		sch = rr.Schema()
	}
	sch = withoutKeys(sch)
	if err := distinctNames(sch); err != nil {
		return 0, fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	proj, err := newProjection(sch, rr)
	if err != nil {
		return 0, fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	defer proj.Release()
	err = s.writeFile(name, func(w io.Writer) error {
		rows, err = WriteParquet(w, sch, proj)
		return err
	}, &rows)
	return rows, err
}

// distinctNames refuses a schema with two fields of the same name,
// compared without case as DuckDB compares identifiers.
func distinctNames(sch *arrow.Schema) error {
	seen := map[string]int{}
	for i, f := range sch.Fields() {
		k := strings.ToLower(f.Name)
		if j, ok := seen[k]; ok {
			return fmt.Errorf("two columns named %q (columns %d and %d): a lake file needs distinct column names", f.Name, j+1, i+1)
		}
		seen[k] = i
	}
	return nil
}

// WriteFile writes one file of the unit through write (buffered, hashed on
// the way, fsynced before WriteFile returns). name is a path relative to the
// unit folder, slash-separated.
func (s *Staged) WriteFile(name string, write func(w io.Writer) error) error {
	return s.writeFile(name, write, nil)
}

func (s *Staged) writeFile(name string, write func(w io.Writer) error, rows *int64) (err error) {
	if s.done {
		return fmt.Errorf("arrowio: write %s/%s: unit already committed or aborted", s.unit, name)
	}
	if err := checkFileName(name); err != nil {
		return fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	if _, dup := s.files[name]; dup {
		return fmt.Errorf("arrowio: write %s/%s: file written twice", s.unit, name)
	}
	p := filepath.Join(s.dir, filepath.FromSlash(name))
	if err := mkdirAllSync(filepath.Dir(p)); err != nil {
		return fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(p)
		}
	}()
	hw := &hashWriter{w: f, h: sha256.New()}
	bw := bufio.NewWriterSize(hw, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("arrowio: write %s/%s: %w", s.unit, name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("arrowio: fsync %s/%s: %w", s.unit, name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("arrowio: close %s/%s: %w", s.unit, name, err)
	}
	e := FileEntry{Name: name, Bytes: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil))}
	if rows != nil {
		e.Rows = *rows
	}
	s.files[name] = e
	return nil
}

// checkFileName accepts a clean relative slash path whose components do not
// start with '.' or '_' (reserved: _commit.json).
func checkFileName(name string) error {
	if name == "" || path.Clean(name) != name || path.IsAbs(name) || strings.Contains(name, `\`) {
		return fmt.Errorf("bad file name %q: want a relative slash path like part-0-0.parquet", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c[0] == '.' || c[0] == '_' {
			return fmt.Errorf("bad file name %q: components may not start with '.' or '_'", name)
		}
	}
	return nil
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	hw.h.Write(p)
	n, err := hw.w.Write(p)
	hw.n += int64(n)
	return n, err
}

// Commit publishes the unit: it fsyncs and hashes files written directly
// into Path, writes and fsyncs _commit.json and the staging folder, creates
// the partition parents, renames the staging folder onto Unit.Dir() without
// replacing anything, and fsyncs the parent. If the unit already exists the
// staging folder is removed and the error wraps ErrAlreadyCommitted.
func (s *Staged) Commit() (*Manifest, error) {
	if s.done {
		return nil, fmt.Errorf("arrowio: commit %s: unit already committed or aborted", s.unit)
	}
	s.done = true
	defer unlockRemove(s.lock, s.dir+LockSuffix)
	m, err := s.commit()
	if err != nil {
		if rmErr := os.RemoveAll(s.dir); rmErr != nil && !errors.Is(err, ErrAlreadyCommitted) {
			err = errors.Join(err, rmErr)
		}
		return nil, err
	}
	return m, nil
}

func (s *Staged) commit() (*Manifest, error) {
	wrap := func(err error) error { return fmt.Errorf("arrowio: commit %s: %w", s.unit, err) }
	entries, dirs, err := s.collect()
	if err != nil {
		return nil, wrap(err)
	}
	m := &Manifest{Unit: s.unit, Files: entries, RljobVersion: Version, Args: s.args, CreatedAt: time.Now().UTC()}
	buf, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, wrap(err)
	}
	if err := writeFileSync(filepath.Join(s.dir, ManifestName), append(buf, '\n')); err != nil {
		return nil, wrap(err)
	}
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return nil, wrap(err)
		}
	}
	final := s.lake.Path(s.unit.Dir())
	if err := mkdirAllSync(filepath.Dir(final)); err != nil {
		return nil, wrap(err)
	}
	// Last look before the rename: every file the manifest names is still
	// there with its size (a folder emptied under us must not commit).
	if err := s.checkPresent(append(entries, FileEntry{Name: ManifestName, Bytes: int64(len(buf) + 1)})); err != nil {
		return nil, wrap(err)
	}
	for attempt := 0; ; attempt++ {
		err = renameNoReplace(s.dir, final)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			break
		}
		if _, serr := os.Stat(filepath.Join(final, ManifestName)); serr == nil {
			return nil, wrap(ErrAlreadyCommitted)
		}
		// An empty folder at the unit path (left by hand or by another tool)
		// holds no data: remove it and retry once. os.Remove fails on a
		// non-empty folder, so a unit committed meanwhile is never touched.
		if attempt > 0 || os.Remove(final) != nil {
			if _, serr := os.Stat(filepath.Join(final, ManifestName)); serr == nil {
				return nil, wrap(ErrAlreadyCommitted)
			}
			return nil, wrap(fmt.Errorf("%s exists without %s (not written by rljob): move it away", final, ManifestName))
		}
	}
	if err != nil {
		return nil, wrap(err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return nil, wrap(err)
	}
	if err := syncDir(filepath.Dir(s.dir)); err != nil {
		return nil, wrap(err)
	}
	return m, nil
}

// collect lists every file in the staging folder as manifest entries (sorted
// by name), hashing and fsyncing those not written through s, and returns the
// folders to fsync.
func (s *Staged) collect() ([]FileEntry, []string, error) {
	var (
		entries []FileEntry
		dirs    []string
	)
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: %w (%s)", name, errNotRegular, d.Type())
		}
		if e, ok := s.files[name]; ok {
			entries = append(entries, e)
			return nil
		}
		if name == ManifestName {
			return fmt.Errorf("%s present before commit", ManifestName)
		}
		e, err := hashFile(p, true)
		if err != nil {
			return err
		}
		e.Name = name
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Name] = true
	}
	for name := range s.files {
		if !seen[name] {
			return nil, nil, fmt.Errorf("%s was written to the staging folder %s but is gone (removed by hand, or by a gc that did not honour the writer's lock); nothing committed: rerun the step", name, s.dir)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	if err := s.checkPresent(entries); err != nil {
		return nil, nil, err
	}
	return entries, dirs, nil
}

// checkPresent checks that every entry is a regular file in the staging
// folder with its recorded size.
func (s *Staged) checkPresent(entries []FileEntry) error {
	for _, e := range entries {
		p := filepath.Join(s.dir, filepath.FromSlash(e.Name))
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s is missing from the staging folder %s (removed by hand, or by a gc that did not honour the writer's lock); nothing committed: rerun the step", e.Name, s.dir)
		case err != nil:
			return err
		case !fi.Mode().IsRegular() || fi.Size() != e.Bytes:
			return fmt.Errorf("%s in the staging folder %s has %d bytes, %d were written; nothing committed: rerun the step", e.Name, s.dir, fi.Size(), e.Bytes)
		}
	}
	return nil
}

// hashFile returns size, sha256 and (for .parquet files) the footer row count
// of the file at p, fsyncing it first when sync is set.
func hashFile(p string, sync bool) (FileEntry, error) {
	var e FileEntry
	f, err := os.Open(p)
	if err != nil {
		return e, err
	}
	defer f.Close()
	if sync {
		if err := f.Sync(); err != nil {
			return e, fmt.Errorf("fsync %s: %w", p, err)
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return e, fmt.Errorf("read %s: %w", p, err)
	}
	e.Bytes, e.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	if strings.HasSuffix(p, ".parquet") {
		if e.Rows, err = ParquetRows(p); err != nil {
			return e, err
		}
	}
	return e, nil
}

// Abort discards the staging folder. It is a no-op after Commit or Abort.
func (s *Staged) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	defer unlockRemove(s.lock, s.dir+LockSuffix)
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("arrowio: abort %s: %w", s.unit, err)
	}
	return nil
}

// IsCommitted reports whether u's _commit.json exists.
func (l *Lake) IsCommitted(u Unit) (bool, error) {
	if err := u.Validate(); err != nil {
		return false, err
	}
	_, err := os.Stat(filepath.Join(l.Path(u.Dir()), ManifestName))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("arrowio: %s: %w", u, err)
}

// ReadManifest reads u's _commit.json. A unit that is not committed gives an
// error wrapping fs.ErrNotExist.
func (l *Lake) ReadManifest(u Unit) (*Manifest, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	return readManifest(filepath.Join(l.Path(u.Dir()), ManifestName))
}

func readManifest(p string) (*Manifest, error) {
	buf, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("arrowio: read manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(buf)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("arrowio: corrupt %s: %w", p, err)
	}
	return &m, nil
}

// LastStep returns the highest step of run that has at least one committed
// unit in table, and false when there is none.
func (l *Lake) LastStep(table, run string) (int64, bool, error) {
	u := Unit{Table: table, Run: run}
	if err := u.Validate(); err != nil {
		return 0, false, err
	}
	runDir := filepath.Dir(l.Path(u.PartDir()))
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("arrowio: last step of %s run %s: %w", table, run, err)
	}
	var (
		last  int64
		found bool
	)
	for _, e := range ents {
		step, ok := parseKey(e.Name(), KeyStep)
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.ParseInt(step, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != step || (found && n <= last) {
			continue
		}
		u.Step = n
		if ok, err := l.stepCommitted(u); err != nil {
			return 0, false, err
		} else if ok {
			last, found = n, true
		}
	}
	return last, found, nil
}

// stepCommitted reports whether any unit of u's step folder is committed.
func (l *Lake) stepCommitted(u Unit) (bool, error) {
	dir := l.Path(u.PartDir())
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("arrowio: %s: %w", u.PartDir(), err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if ok, err := exists(filepath.Join(dir, e.Name(), ManifestName)); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

func exists(p string) (bool, error) {
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// parseKey returns v for a folder name "key=v".
func parseKey(name, key string) (string, bool) {
	v, ok := strings.CutPrefix(name, key+"=")
	return v, ok
}

// writeFileSync creates p (which must not exist), writes buf and fsyncs.
func writeFileSync(p string, buf []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a folder so that entries created or renamed in it survive a
// crash. File systems that cannot fsync a folder (EINVAL) are tolerated.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// mkdirAllSync is os.MkdirAll that fsyncs the parent of every folder it
// creates (restic's habit: a new entry is durable only once its folder is).
func mkdirAllSync(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a folder", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o777); err != nil { // less the umask, like every lake folder
		if errors.Is(err, fs.ErrExist) {
			return nil // created concurrently
		}
		return err
	}
	return syncDir(parent)
}
