package jobs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// TestTamperedMarkersRunAndVerifyAgree damages the step markers of a
// 3-step run in every way the issue lists and checks that rljob run
// (jobs.Run) refuses exactly when lake verify reports a problem, and that
// both name the same marker folder.
func TestTamperedMarkersRunAndVerifyAgree(t *testing.T) {
	job, base := markerBase(t, 3)
	for _, tc := range []struct {
		name   string
		damage func(l *arrowio.Lake) error
		names  string // the marker both must name; "" = both accept the lake
	}{
		{"copied to a later step", func(l *arrowio.Lake) error { return copyMarker(l, marker("1"), marker("9")) }, marker("9")},
		{"copied onto the next step", func(l *arrowio.Lake) error { return copyMarker(l, marker("1"), marker("3")) }, marker("3")},
		{"copied as a step folder", func(l *arrowio.Lake) error {
			return exec.Command("cp", "-a", l.Path(marker("1")), l.Path("steps/run=r/step=9")).Run()
		}, "steps/run=r/step=9"},
		{"step 0 deleted", func(l *arrowio.Lake) error { return os.RemoveAll(l.Path(marker("0"))) }, marker("1")},
		{"middle step deleted", func(l *arrowio.Lake) error { return os.RemoveAll(l.Path(marker("1"))) }, marker("2")},
		{"manifest removed", func(l *arrowio.Lake) error {
			return os.Remove(l.Path(marker("1") + "/" + arrowio.ManifestName))
		}, marker("1")},
		{"last step's manifest removed", func(l *arrowio.Lake) error {
			return os.Remove(l.Path(marker("2") + "/" + arrowio.ManifestName))
		}, marker("2")},
		{"last step's marker deleted (the step is redone)", func(l *arrowio.Lake) error {
			return os.RemoveAll(l.Path(marker("2")))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "lake")
			if err := exec.Command("cp", "-a", base, root).Run(); err != nil {
				t.Fatal(err)
			}
			l := &arrowio.Lake{Root: root}
			if err := os.MkdirAll(l.Path("steps/run=r"), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(l); err != nil {
				t.Fatal(err)
			}
			runAndVerifyAgree(t, job, l, tc.names)
		})
	}
}

// markerBase runs the toy job for steps steps in a new lake (run r) and
// returns the job file and the lake.
func markerBase(t *testing.T, steps int) (job, base string) {
	t.Helper()
	job = writeJob(t, toyJob)
	base = filepath.Join(t.TempDir(), "base")
	o := runOpts(job, base)
	o.Steps = steps
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return job, base
}

// marker is the lake folder of run r's marker of step (shard 0).
func marker(step string) string { return "steps/run=r/step=" + step + "/part-0-0" }

func copyMarker(l *arrowio.Lake, from, to string) error {
	if err := os.MkdirAll(filepath.Dir(l.Path(to)), 0o777); err != nil {
		return err
	}
	return exec.Command("cp", "-a", l.Path(from), l.Path(to)).Run()
}

// TestTamperedCompactedMarkersRunAndVerifyAgree: after compaction the
// runner takes a step's markers from the steps segment's prints while the
// marker folder is unchanged (two stats instead of a read); damage made
// after the compaction — including an in-place rewrite of a manifest, which
// keeps the folder and file names — is still found by run and lake verify
// alike, naming the same marker.
func TestTamperedCompactedMarkersRunAndVerifyAgree(t *testing.T) {
	ctx := context.Background()
	job, base := markerBase(t, 12)
	for _, tc := range []struct {
		name   string
		damage func(l *arrowio.Lake) error
		names  string // "" = both accept the lake
	}{
		{"undamaged", func(*arrowio.Lake) error { return nil }, ""},
		{"manifest rewritten in place with another step's", func(l *arrowio.Lake) error {
			buf, err := os.ReadFile(l.Path(marker("3") + "/" + arrowio.ManifestName))
			if err != nil {
				return err
			}
			f, err := os.OpenFile(l.Path(marker("5")+"/"+arrowio.ManifestName), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
			return f.Close()
		}, marker("5")},
		{"manifest removed", func(l *arrowio.Lake) error {
			return os.Remove(l.Path(marker("4") + "/" + arrowio.ManifestName))
		}, marker("4")},
		{"middle step deleted", func(l *arrowio.Lake) error { return os.RemoveAll(l.Path(marker("4"))) }, marker("5")},
		{"marker copied in as another shard", func(l *arrowio.Lake) error {
			return exec.Command("cp", "-a", l.Path(marker("6")), l.Path("steps/run=r/step=6/part-0-1")).Run()
		}, "steps/run=r/step=6/part-0-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "lake")
			if err := exec.Command("cp", "-a", base, root).Run(); err != nil {
				t.Fatal(err)
			}
			// Compacted here: prints identify this copy's files.
			if _, err := rsql.CompactLake(ctx, root, rsql.CompactOptions{}); err != nil {
				t.Fatal(err)
			}
			l := &arrowio.Lake{Root: root}
			st, err := l.ReadStepStatus("r")
			if err != nil || st.Printed != 10 || st.Next != 12 {
				t.Fatalf("before damage: %d steps from prints, next %d (%v); want 10, 12", st.Printed, st.Next, err)
			}
			if err := tc.damage(l); err != nil {
				t.Fatal(err)
			}
			runAndVerifyAgree(t, job, l, tc.names)
		})
	}
}

// runAndVerifyAgree checks that lake verify reports a problem under the
// marker folder names and rljob run refuses with a data error naming it,
// or, with names "", that both accept the lake.
func runAndVerifyAgree(t *testing.T, job string, l *arrowio.Lake, names string) {
	t.Helper()
	r, err := l.VerifyReport()
	if err != nil {
		t.Fatal(err)
	}
	_, runErr := Run(context.Background(), runOpts(job, l.Root))
	if names == "" {
		if len(r.Problems) > 0 || runErr != nil {
			t.Fatalf("verify %v, run %v: want both to accept the lake", r.Problems, runErr)
		}
		return
	}
	verifyNames := false
	for _, p := range r.Problems {
		verifyNames = verifyNames || strings.HasPrefix(p.Path, names)
	}
	if !verifyNames {
		t.Errorf("verify problems %v: none names %s", r.Problems, names)
	}
	var de *DataError
	if !errors.As(runErr, &de) || !strings.Contains(runErr.Error(), names) {
		t.Errorf("run: %v; want a data error naming %s", runErr, names)
	}
}
