package jobs

import (
	"context"
	"strings"
	"testing"
)

// explainStage records what ExplainNoRows says at its call.
type explainStage struct{ got *[]string }

func (explainStage) Spec() StageSpec {
	return StageSpec{Name: "explain", Doc: "test: ExplainNoRows", Outputs: func(Args) []string { return nil }}
}

func (e explainStage) Run(ctx context.Context, sc *StageCtx, _ Args) (Summary, error) {
	*e.got = append(*e.got, sc.ExplainNoRows(ctx))
	return Summary{}, nil
}

// train on zero rows says why when this step's views tell: no rollouts, no
// rewards, every group with equal rewards, or a query that selected none.
func TestExplainNoRows(t *testing.T) {
	var got []string
	reg := &Registry{}
	for _, s := range DefaultRegistry.Stages() {
		reg.Register(s)
	}
	reg.Register(explainStage{got: &got})
	samples := func(n string) string {
		return `CREATE OR REPLACE TABLE samples AS
SELECT 'p' || i || '/' || j AS rollout_id, 'p' || i AS prompt_id, j AS sample_idx, 'q' AS prompt, 'train' AS tag,
       CASE WHEN i % 3 = 0 OR (j = 1 AND i = 1) THEN '1' ELSE 'x' END AS completion, '1' AS answer
FROM range(6) t(i), range(` + n + `) s(j);
CALL save(source := 'samples', output := 'rollouts');
`
	}
	tests := []struct{ src, want string }{
		{"CALL explain();", "step 0 has no train rollouts (before this call)"},
		{samples("1") + "CALL explain();", "step 0 has 6 train rollouts but none has a reward"},
		{samples("1") + "CALL reward(verifier := 'exact');\nCALL explain();", "all 6 groups of step 0 have group_std = 0 (2 all correct, 4 all wrong)"},
		{samples("2") + "CALL reward(verifier := 'exact');\nCALL explain();", "step 0 has 12 scored train rollouts in 6 groups (1 with group_std > 0), and the data query selected none"},
	}
	for _, tc := range tests {
		got = nil
		o := runOpts(writeJob(t, tc.src), t.TempDir())
		o.Registry = reg
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("ExplainNoRows = %q, want %q", got, tc.want)
		}
	}
}
