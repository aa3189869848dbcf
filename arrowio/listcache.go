package arrowio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// ListCache keeps, across the ListTableCached calls of one reader, what
// cannot change under it, so that listing a table costs the same at step
// 10 and at step 10,000:
//
//   - committed segment manifests, by path (a committed segment is never
//     rewritten, only removed; the folder listing still says which exist);
//   - the step folders of run Run below Frontier and the committed files of
//     those no segment covers. The caller promises that those steps are
//     complete and that nothing commits into them while the cache lives: a
//     job runner holds the run's lock and has waited for every shard of the
//     steps before its snapshot's. New steps [old Frontier, Frontier) are
//     probed one by one, so the run folder is read once, not per step.
//
// Run's step folders at or after Frontier are not listed (a snapshot of
// step Frontier does not show them), and other entries of Run's folder
// (loose files) are read as of the first listing.
type ListCache struct {
	Run      string
	Frontier int64

	segs   map[string]*SegmentManifest
	tables map[string]*runListing
}

type runListing struct {
	upTo  int64                // step folders below upTo are in steps
	steps []int64              // existing step folders, sorted
	files map[int64][]DataFile // committed files of an uncovered step
	loose []DataFile           // files of the run folder outside step folders
}

// NewListCache starts a cache for a reader whose run is run (may be "": no
// run's steps are cached, only segment manifests) at step frontier.
func NewListCache(run string, frontier int64) *ListCache {
	return &ListCache{Run: run, Frontier: frontier, segs: map[string]*SegmentManifest{}, tables: map[string]*runListing{}}
}

// Advance moves the cache to (run, frontier): the same run at a later or
// equal step keeps its listings; another run or an earlier step drops them
// (segment manifests are kept).
func (c *ListCache) Advance(run string, frontier int64) {
	if run != c.Run || frontier < c.Frontier {
		c.tables = map[string]*runListing{}
	}
	c.Run, c.Frontier = run, frontier
}

// segmentManifest reads the manifest at p, from the cache when it was read
// before.
func (c *ListCache) segmentManifest(p string) (*SegmentManifest, error) {
	if c != nil {
		if m, ok := c.segs[p]; ok {
			return m, nil
		}
	}
	m, err := readSegmentManifest(p)
	if err == nil && c != nil {
		c.segs[p] = m
	}
	return m, err
}

// listCachedRun lists the files of run folder runDir (of table, the
// cache's run) that segs do not cover, appending them to out.
func (l *Lake) listCachedRun(c *ListCache, table, runDir string, segs []*SegmentManifest, walk func(string) ([]DataFile, error), out *[]DataFile) error {
	rl := c.tables[table]
	if rl == nil {
		rl = &runListing{files: map[int64][]DataFile{}}
		names, err := readNames(runDir)
		if err != nil {
			return err
		}
		for _, n := range names {
			if v, ok := parseKey(n, KeyStep); ok {
				if step, ok := canonicalStep(v); ok {
					if step < c.Frontier {
						rl.steps = append(rl.steps, step)
					}
					continue
				}
			}
			files, err := walk(filepath.Join(runDir, n))
			if err != nil {
				return err
			}
			rl.loose = append(rl.loose, files...)
		}
		sort.Slice(rl.steps, func(i, j int) bool { return rl.steps[i] < rl.steps[j] })
		rl.upTo = c.Frontier
		c.tables[table] = rl
	}
	for ; rl.upTo < c.Frontier; rl.upTo++ {
		fi, err := os.Stat(filepath.Join(runDir, KeyStep+"="+strconv.FormatInt(rl.upTo, 10)))
		switch {
		case err == nil && fi.IsDir():
			rl.steps = append(rl.steps, rl.upTo)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	*out = append(*out, rl.loose...)
	for _, step := range rl.steps {
		if step >= c.Frontier || coveredBy(segs, step) {
			continue
		}
		files, ok := rl.files[step]
		if !ok {
			var err error
			files, err = walk(filepath.Join(runDir, KeyStep+"="+strconv.FormatInt(step, 10)))
			if err != nil {
				return err
			}
			rl.files[step] = files
		}
		*out = append(*out, files...)
	}
	return nil
}

// coveredBy reports whether one of segs covers step.
func coveredBy(segs []*SegmentManifest, step int64) bool {
	for _, s := range segs {
		if s.Covers(step) {
			return true
		}
	}
	return false
}

// readNames lists the names in dir, unsorted, without a stat of each.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
