package jobs

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// --set of a variable that no statement reads is a usage error naming the
// variables the job reads (with the closest as a suggestion).
func TestSetOfUnreadVariable(t *testing.T) {
	src := "CREATE TABLE t AS SELECT coalesce(getvariable('lr'), 1e-3) AS lr, getvariable('step') AS s;\n" +
		"CALL save(query := 'SELECT getvariable(''prompts_per_step'') AS n', output := 'xs');"
	tests := []struct {
		sets []string
		want string // "" = accepted
	}{
		{[]string{"lr=1e-4", "prompts_per_step=4"}, ""},
		{[]string{"LR=1e-4"}, ""},
		{[]string{"lr=1e-4", "prompt_per_step=4"}, `--set prompt_per_step: no statement of the job reads variable "prompt_per_step"`},
		{[]string{"n_one=16"}, "the job reads lr, prompts_per_step"},
		{[]string{"prompt_per_step=4"}, "did you mean prompts_per_step?"},
	}
	for _, tc := range tests {
		o := runOpts(writeJob(t, src), t.TempDir())
		o.Sets, o.DryRun = tc.sets, true
		_, err := Run(context.Background(), o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("--set %v: %v", tc.sets, err)
		case tc.want != "" && (ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("--set %v: exit %d %v, want exit 2 and %q", tc.sets, ExitCode(err), err, tc.want)
		}
	}
	// A job that reads no variable of its own says so.
	o := runOpts(writeJob(t, "SELECT getvariable('step');"), t.TempDir())
	o.Sets, o.DryRun = []string{"x=1"}, true
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "reads no variable of its own") {
		t.Errorf("job without variables: %v", err)
	}
	// A computed variable name: the list may be incomplete, nothing is refused.
	o = runOpts(writeJob(t, "SELECT getvariable('v' || '1');"), t.TempDir())
	o.Sets, o.DryRun = []string{"v1=1"}, true
	if _, err := Run(context.Background(), o); err != nil {
		t.Errorf("computed name: %v", err)
	}
}

// A lake view filtered on the current step selects nothing: warned, with
// the this_step_ view to read instead; the previous step and this_step_
// views are not warned about.
func TestStepFilterWarning(t *testing.T) {
	src := `CREATE TABLE a AS SELECT * FROM rollouts WHERE step = getvariable('step');
CREATE TABLE b AS SELECT * FROM rollouts AS r WHERE r.step = getvariable('step') - 1;
CREATE TABLE c AS SELECT * FROM this_step_rollouts WHERE step = getvariable('step');
CALL log_metrics(query := 'SELECT name, value FROM metrics WHERE getvariable(''step'') = metrics.step');
CREATE TABLE d AS SELECT * FROM items WHERE step = CAST(getvariable('step') AS BIGINT);`
	job, err := CompileJob(filepath.Join("x", "job.sql"), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := StepFilterWarnings(job, []string{"items"})
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	want := []string{
		"x/job.sql:1:48: warning: the lake view rollouts is filtered on step = getvariable('step'), but it shows only the steps before the current one, so the filter selects no row (read this step's rows from this_step_rollouts, or an earlier step with step = getvariable('step') - 1)",
		"x/job.sql:4:66: warning: the lake view metrics is filtered on getvariable(''step'') = metrics.step,",
		"x/job.sql:5:45: warning: the lake view items is filtered on step = CAST(getvariable('step'),",
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d:\n%s\nwant prefix\n%s", i, got[i], want[i])
		}
	}
	// Run logs them.
	var buf strings.Builder
	o := runOpts(writeJob(t, "SELECT * FROM rollouts WHERE step = getvariable('step');"), t.TempDir())
	o.DryRun, o.Log = true, zerolog.New(&buf)
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"level":"warn"`) || !strings.Contains(buf.String(), "this_step_rollouts") {
		t.Errorf("dry run log: %s", buf.String())
	}
}

// No example job file filters a lake view on the current step.
func TestExamplesHaveNoStepFilterWarning(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*.sql")
	more, _ := filepath.Glob("../examples/*/*/*.sql")
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("found %d example job files", len(files))
	}
	for _, f := range files {
		job, err := LoadJob(f, nil)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, w := range StepFilterWarnings(job, nil) {
			t.Errorf("%s", w)
		}
	}
}
