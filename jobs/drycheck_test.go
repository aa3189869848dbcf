package jobs

import (
	"context"
	"strings"
	"testing"
)

// policyStage is a test stage reading policy := 'latest' (as rollout and
// train do); ckStage writes a checkpoint (as init_policy and sft do).
type policyStage struct{}

func (policyStage) Spec() StageSpec {
	return StageSpec{Name: "sample", Doc: "test: reads a policy",
		Args:    []ArgSpec{{Name: "policy", Type: TypeString, Default: "latest", Doc: "policy"}, {Name: "prompts", Type: TypeTable, Doc: "prompts"}},
		Outputs: func(Args) []string { return nil }}
}
func (policyStage) Run(context.Context, *StageCtx, Args) (Summary, error) { return Summary{}, nil }

type ckStage struct{}

func (ckStage) Spec() StageSpec {
	return StageSpec{Name: "make_ck", Doc: "test: writes a checkpoint", Outputs: func(Args) []string { return []string{"checkpoints"} }}
}
func (ckStage) Run(context.Context, *StageCtx, Args) (Summary, error) { return Summary{}, nil }

// --dry-run checks table arguments (exit 2 for a table no statement
// creates, or a query that does not parse) and warns when the job reads a
// checkpoint or this run's prompts that the lake does not hold and no
// earlier statement writes.
func TestDryRunChecks(t *testing.T) {
	reg := &Registry{}
	for _, s := range DefaultRegistry.Stages() {
		reg.Register(s)
	}
	reg.Register(policyStage{})
	reg.Register(ckStage{})
	tests := []struct {
		name, src string
		err       string   // "" = the dry run passes
		warns     []string // prefixes of the warnings, after file:line:col
	}{
		{name: "table typo", src: "CREATE OR REPLACE TABLE batch AS SELECT 1 AS x;\nCALL save(source := 'bacth', output := 'xs');",
			err: "job.sql:2:11: save: source := 'bacth': no statement of the job creates a table or view bacth, and the lake has none"},
		{name: "table typo hint", src: "CREATE TABLE batch AS SELECT 1 AS x;\nCALL save(source := bacth, output := 'xs');", err: "did you mean batch?"},
		{name: "bad query", src: "CALL save(query := 'SELEC 1', output := 'xs');", err: "job.sql:1:11: save: query := 'SELEC 1' is not a valid query"},
		{name: "table created later in a loop, lake view, this_step view", src: "FOR i IN 1..2 DO\nCALL save(source := 'later', output := 'xs', when := getvariable('i') = 2);\nCREATE OR REPLACE TABLE later AS SELECT 1 AS x;\nEND FOR;\nCALL save(source := 'rollouts', output := 'ys');\nCALL save(source := this_step_xs, output := 'zs');\nCALL save(source := 'zs', output := 'more');"},
		{name: "no checkpoint", src: "CALL sample(prompts := 'SELECT 1');", warns: []string{`1:1: warning: sample reads policy := 'latest', but run "r" has no checkpoint before step 0`}},
		{name: "checkpoint written first", src: "CALL make_ck();\nCALL sample();"},
		{name: "another policy", src: "CALL sample(policy := '/some/folder');"},
		{name: "no prompts", src: "SELECT 1;\nCREATE TABLE b AS SELECT * FROM prompts WHERE run = getvariable('run');",
			warns: []string{`2:1: warning: this statement reads the prompts of run "r", but the lake has none for that run`}},
		{name: "prompts written first", src: "CALL save(query := 'SELECT ''p'' AS prompt_id, ''q'' AS prompt', output := 'prompts');\nCREATE TABLE b AS SELECT * FROM prompts WHERE run = getvariable('run');"},
		{name: "prompts of another run", src: "CREATE TABLE b AS SELECT * FROM prompts WHERE run = 'other';"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := runOpts(writeJob(t, tc.src), t.TempDir())
			o.DryRun, o.Registry = true, reg
			res, err := Run(context.Background(), o)
			if tc.err != "" {
				if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("exit %d %v, want exit 2 and %q", ExitCode(err), err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != len(tc.warns) {
				t.Fatalf("warnings %v, want %d", res.Warnings, len(tc.warns))
			}
			for i, w := range tc.warns {
				if !strings.Contains(res.Warnings[i].String(), "job.sql:"+w) {
					t.Errorf("warning %q, want %q", res.Warnings[i], w)
				}
			}
		})
	}
}
