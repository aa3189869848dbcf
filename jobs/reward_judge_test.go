package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// judgeJob saves one rollout per completion (answer '7' for all) and
// scores them with testdata/judge.sh, copied next to the job file, using
// the reward arguments args.
func judgeJob(t *testing.T, completions []string, args string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/judge.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "judge.sh"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for i, c := range completions {
		vals = append(vals, "('p"+sprint(i)+"', '"+c+"')")
	}
	src := `CREATE OR REPLACE TABLE samples AS
SELECT prompt_id || '/' || getvariable('step') AS rollout_id, prompt_id, 0 AS sample_idx, 'what is 3 + 4' AS prompt, completion, '7' AS answer
FROM (VALUES ` + strings.Join(vals, ", ") + `) t(prompt_id, completion);
CALL save(source := 'samples', output := 'rollouts');
CALL reward(verifier := 'exec:sh judge.sh'` + args + `);
`
	p := filepath.Join(dir, "job.sql")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRewardExecJudge: the judge's answers become rewards rows under the
// verifier 'exec:sh judge.sh'; a judgement stalled for 10 s costs its
// 1-second timeout and is recorded with error_reward, as is an "error"
// answer.
func TestRewardExecJudge(t *testing.T) {
	lake := t.TempDir()
	job := judgeJob(t, []string{"7", "8", "stall", "refuse", "7"}, ", timeout := 1, error_reward := -1.0, concurrency := 4")
	t0 := time.Now()
	if _, err := Run(context.Background(), runOpts(job, lake)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 6*time.Second {
		t.Errorf("the step took %s; a 10 s stall should cost its 1 s timeout", el)
	}
	got := query(t, lake, `SELECT rollout_id, verifier, reward, correct, extracted FROM rewards ORDER BY rollout_id`)
	want := []string{
		"p0/0|exec:sh judge.sh|1|true|7",
		"p1/0|exec:sh judge.sh|0.25|false|8",
		"p2/0|exec:sh judge.sh|-1|false|timeout: no response within 1s",
		"p3/0|exec:sh judge.sh|-1|false|error: cannot judge refuse",
		"p4/0|exec:sh judge.sh|1|true|7",
	}
	if len(got) != len(want) {
		t.Fatalf("rewards:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("row %d: %q, want %q...", i, got[i], want[i])
		}
	}
}

// TestRewardExecJudgeFailures: a crash, a non-JSON line, and (under
// on_error := 'fail') a timeout fail the call with an error naming the
// judge, the rollout and the fault, and commit no rewards.
func TestRewardExecJudgeFailures(t *testing.T) {
	for _, tc := range []struct {
		name, comp, args string
		want             []string
	}{
		// One request at a time: with several in flight the judge may read
		// p1's before p0's and exit with both pending, and the error then
		// names p0/0 (it cannot know which one crashed the process).
		{"crash", "crash", ", concurrency := 1", []string{`judge "sh judge.sh"`, `rollout_id "p1/0"`, "exited with status 3", "judge: cannot parse crash", "nothing committed"}},
		{"bad JSON", "garbage", "", []string{`judge "sh judge.sh"`, "protocol error", `"looking at garbage"`, "is not a JSON object"}},
		{"timeout fails", "stall", ", timeout := 0.5, on_error := 'fail'", []string{`rollout_id "p1/0"`, "timeout", "no response within 500ms"}},
		{"error fails", "refuse", ", on_error := 'fail'", []string{`rollout_id "p1/0"`, "cannot judge refuse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lake := t.TempDir()
			_, err := Run(context.Background(), runOpts(judgeJob(t, []string{"7", tc.comp}, tc.args), lake))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := query(t, lake, `SELECT count(*) FROM rewards`); got[0] != "0" {
				t.Errorf("rewards committed: %v", got)
			}
		})
	}
}

// TestRewardArgChecks: arguments of one verifier given to another, and
// malformed judges, are usage errors before anything runs.
func TestRewardArgChecks(t *testing.T) {
	for _, tc := range []struct{ call, want string }{
		{"reward(verifier := 'exact', timeout := 3)", "timeout is only used by verifier 'exec:CMD'"},
		{"reward(verifier := 'exec:  ')", "verifier 'exec:' names no command"},
		{"reward(verifier := 'exec:sh j.sh', judge := 'ref')", "judge is only used by verifier 'model'"},
		{"reward(verifier := 'model')", "verifier 'model' needs judge"},
		{"reward(verifier := 'model', judge := 'ref', template := 'x')", "template has no {completion}"},
		{"reward(verifier := 'model', judge := 'ref', parse := 'regex')", "parse and max_new_tokens are only used by mode 'generate'"},
		{"reward(verifier := 'model', judge := 'ref', mode := 'generate', parse := 'regex')", "verifier 'regex' needs pattern"},
		{"reward(verifier := 'gsm9k')", `verifier "gsm9k" is not one of 'exact', 'gsm8k', 'gsm8k_flexible', 'math', 'regex', 'model', 'exec:CMD'`},
		{"reward(verifier := 'exec:sh j.sh', concurrency := 0)", "concurrency must be >= 1"},
	} {
		_, err := Run(context.Background(), runOpts(writeJob(t, "CALL "+tc.call+";\n"), t.TempDir()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.call, err, tc.want)
		}
	}
}

// TestTwoVerifiersNeverMix: a step scored by 'exact' and by an exec: judge
// cannot feed this_step_scored to training until the job names the
// verifier that trains (train_verifier); then it holds that verifier's
// rows only, and scored_all keeps both.
func TestTwoVerifiersNeverMix(t *testing.T) {
	mix := `
CALL reward(verifier := 'exact');
CREATE OR REPLACE TABLE train_rows AS SELECT rollout_id, verifier, reward FROM this_step_scored;
`
	lake := t.TempDir()
	job := judgeJob(t, []string{"7", "8"}, "")
	b, _ := os.ReadFile(job)
	if err := os.WriteFile(job, append(b, mix...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), runOpts(job, lake))
	if err == nil || !strings.Contains(err.Error(), "has rewards from two verifiers, 'exact' and 'exec:sh judge.sh'") ||
		!strings.Contains(err.Error(), "SET VARIABLE train_verifier") {
		t.Fatalf("got %v, want the two-verifier error", err)
	}

	lake = t.TempDir()
	if err := os.WriteFile(job, append([]byte("SET VARIABLE train_verifier = 'exact';\n"), append(b, mix...)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), runOpts(job, lake)); err != nil {
		t.Fatal(err)
	}
	got := query(t, lake, `SELECT verifier, count(*), sum(reward) FROM scored_all GROUP BY verifier ORDER BY verifier`)
	if strings.Join(got, ",") != "exact|2|1,exec:sh judge.sh|2|1.25" {
		t.Errorf("scored_all by verifier: %v", got)
	}
}
