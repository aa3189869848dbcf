package arrowio

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Marker prints (issue 9). Resuming a run verifies every step marker, which
// on a 10,000-step run means 10,000 folders read and manifests parsed. A
// compacted steps segment therefore also holds MarkerPrintsFile: for each
// marker it covers, what the marker said (shard, num_shards, job sha256)
// when compaction verified it, with the identity (inode, size, change time)
// of its _commit.json and of its step folder. StepMarkers trusts a print
// only while both identities are unchanged — two stats instead of a folder
// read and a parse — and reads the step in full otherwise, so a marker
// copied, deleted, rewritten or joined by another part after compaction is
// checked exactly as before, and run and lake verify still agree.

// MarkerPrintsFile is the prints file of a steps segment, one line per
// marker: step call shard num_shards manifest-ino manifest-size
// manifest-ctime dir-ctime job-sha256 ("-" when empty).
const MarkerPrintsFile = "markers.txt"

// markerPrint is one line of MarkerPrintsFile.
type markerPrint struct {
	m        StepMarker
	manifest fileID
	dir      int64 // change time of the step folder
}

// WriteMarkerPrints writes MarkerPrintsFile for steps first..last of run
// into dir (a steps segment's staging folder). Each step folder is
// identified, read and checked in full, then identified again; a step that
// fails the check or changed meanwhile is an error (no prints: the segment
// is not written). On a platform without change times it writes nothing.
func (l *Lake) WriteMarkerPrints(dir, run string, first, last int64) error {
	var buf bytes.Buffer
	for step := first; step <= last; step++ {
		ps, ok, err := l.printStep(run, step)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		for _, p := range ps {
			sha := p.m.JobSHA256
			if sha == "" {
				sha = "-"
			}
			fmt.Fprintf(&buf, "%d %d %d %d %d %d %d %d %s\n", p.m.Step, p.m.Call, p.m.Shard, p.m.NumShards,
				p.manifest.Ino, p.manifest.Size, p.manifest.Ctime, p.dir, sha)
		}
	}
	return writeFileSync(filepath.Join(dir, MarkerPrintsFile), buf.Bytes())
}

// printStep reads step's markers with their identities; ok is false where
// the platform has no change times.
func (l *Lake) printStep(run string, step int64) ([]markerPrint, bool, error) {
	before, ok, err := l.stepIDs(run, step)
	if err != nil || !ok {
		return nil, ok, err
	}
	r := l.readStepMarkers(run, step)
	if r.dirErr != nil {
		return nil, false, r.dirErr
	}
	if r.err != nil {
		return nil, false, r.err
	}
	after, _, err := l.stepIDs(run, step)
	if err != nil {
		return nil, false, err
	}
	if len(after.parts) != len(r.markers) || after.dir != before.dir {
		return nil, false, fmt.Errorf("arrowio: step marker folder %s changed while it was read", Unit{Table: TableSteps, Run: run, Step: step}.PartDir())
	}
	var out []markerPrint
	for _, m := range r.markers {
		id, ok := after.parts[m.Shard]
		if !ok || id != before.parts[m.Shard] {
			return nil, false, fmt.Errorf("arrowio: step marker %s changed while it was read", stepMarkerDir(run, step, m.Shard))
		}
		out = append(out, markerPrint{m: m, manifest: id, dir: after.dir})
	}
	return out, true, nil
}

// stepIDs are the identities of a step folder and of its markers'
// manifests, by shard.
type stepIDs struct {
	dir   int64
	parts map[int]fileID
}

func (l *Lake) stepIDs(run string, step int64) (stepIDs, bool, error) {
	dir := l.Path(Unit{Table: TableSteps, Run: run, Step: step}.PartDir())
	d, ok, err := statID(dir)
	if err != nil || !ok {
		return stepIDs{}, ok, err
	}
	ids := stepIDs{dir: d.Ctime, parts: map[int]fileID{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return stepIDs{}, false, err
	}
	for _, e := range ents {
		if _, shard, ok := parsePart(e.Name()); ok {
			id, _, err := statID(filepath.Join(dir, e.Name(), ManifestName))
			if err != nil {
				continue // no manifest: readStepMarkers says what that means
			}
			ids.parts[shard] = id
		}
	}
	return ids, true, nil
}

// markerPrints reads the prints of run's steps segments (those a reader
// uses: ChooseSegments), by step. Unreadable prints are left out: those
// steps are read in full.
func (l *Lake) markerPrints(run string) map[int64][]markerPrint {
	all, err := l.Segments(TableSteps)
	if err != nil {
		return nil
	}
	var mine []*SegmentManifest
	for _, s := range all {
		if s.Run == run {
			mine = append(mine, s)
		}
	}
	out := map[int64][]markerPrint{}
	for _, s := range ChooseSegments(mine) {
		ps, err := readMarkerPrints(l.Path(s.Dir()+"/"+MarkerPrintsFile), run)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if s.Covers(p.m.Step) {
				out[p.m.Step] = append(out[p.m.Step], p)
			}
		}
	}
	return out
}

func readMarkerPrints(p, run string) ([]markerPrint, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []markerPrint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 9 {
			return nil, fmt.Errorf("arrowio: %s: malformed line %q", p, sc.Text())
		}
		var n [8]int64
		for i := range n {
			v, err := strconv.ParseInt(fs[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("arrowio: %s: malformed line %q", p, sc.Text())
			}
			n[i] = v
		}
		sha := fs[8]
		if sha == "-" {
			sha = ""
		}
		out = append(out, markerPrint{
			m:        StepMarker{Run: run, Step: n[0], Call: int(n[1]), Shard: int(n[2]), NumShards: int(n[3]), JobSHA256: sha},
			manifest: fileID{Ino: n[4], Size: n[5], Ctime: n[6]},
			dir:      n[7],
		})
	}
	return out, sc.Err()
}

// checkPrints returns step's markers from its prints when the step folder
// and every printed manifest are as they were printed.
func (l *Lake) checkPrints(run string, step int64, ps []markerPrint) ([]StepMarker, bool) {
	dir := l.Path(Unit{Table: TableSteps, Run: run, Step: step}.PartDir())
	d, ok, err := statID(dir)
	if err != nil || !ok || d.Ctime != ps[0].dir {
		return nil, false
	}
	out := make([]StepMarker, 0, len(ps))
	for _, p := range ps {
		id, ok, err := statID(filepath.Join(dir, "part-"+strconv.Itoa(p.m.Call)+"-"+strconv.Itoa(p.m.Shard), ManifestName))
		if err != nil || !ok || id != p.manifest {
			return nil, false
		}
		out = append(out, p.m)
	}
	return out, true
}
