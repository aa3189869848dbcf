package report

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// CompleteSteps is the view of a lake that a live report reads: the steps
// whose markers every shard committed (the job runner's rule for the steps
// of other runs), so a page never shows half a step. A run with no marker
// at all (written without the job runner) shows every committed unit.
type CompleteSteps struct {
	lake   *arrowio.Lake
	status map[string]*arrowio.StepStatus
}

// NewCompleteSteps reads the markers of the lake at root afresh. It only
// reads (arrowio.OpenLake would create _staging and _locks).
func NewCompleteSteps(root string) (*CompleteSteps, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("report: lake %s: %w", root, err)
	}
	return &CompleteSteps{lake: &arrowio.Lake{Root: abs}, status: map[string]*arrowio.StepStatus{}}, nil
}

func (c *CompleteSteps) statusOf(run string) *arrowio.StepStatus {
	st, ok := c.status[run]
	if !ok {
		var err error
		if st, err = c.lake.ReadStepStatus(run); err != nil {
			st = &arrowio.StepStatus{}
		}
		c.status[run] = st
	}
	return st
}

// Complete reports whether step of run is visible.
func (c *CompleteSteps) Complete(run string, step int64) bool {
	st := c.statusOf(run)
	return len(st.Shards) == 0 || st.Complete[step]
}

// Snapshot is the engine snapshot that shows the complete steps of every
// run (no run is "current").
func (c *CompleteSteps) Snapshot() *rsql.Snapshot {
	return &rsql.Snapshot{Run: "", Step: 0, Complete: c.Complete}
}

// Fingerprint changes when a run of runs commits a step: per run, its
// complete-step count, or for a run without markers its number of
// committed metrics and rollouts units.
func (c *CompleteSteps) Fingerprint(runs []string) string {
	var parts []string
	for _, run := range runs {
		st := c.statusOf(run)
		if len(st.Shards) > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", run, st.Next))
			continue
		}
		n := 0
		for _, table := range []string{arrowio.TableMetrics, arrowio.TableRollouts} {
			units, _ := filepath.Glob(filepath.Join(c.lake.Root, table, arrowio.KeyRun+"="+run, "*", "*", arrowio.ManifestName))
			n += len(units)
		}
		parts = append(parts, fmt.Sprintf("%s:u%d", run, n))
	}
	return strings.Join(parts, ",")
}
