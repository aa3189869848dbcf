package rl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer"
)

// TestExecPolicyEnv: exec's command sees the current policy as
// RLJOB_POLICY_DIR (the folder policy := 'latest' names for the call) and
// RLJOB_TOKENIZER (its tokenizer.json): before any checkpoint neither is
// set; at step 1, statement 1, it is step 0's checkpoint; after a
// statement of step 1 that commits a checkpoint, it is that one; at step 2
// it is step 1's newest.
func TestExecPolicyEnv(t *testing.T) {
	lake, config := testLake(t)
	out := t.TempDir()
	// exec writes "<dir>|<tokenizer>|set" ("||" when unset) to out/<name>-<step> and copies its input.
	execCall := func(name string) string {
		return `CREATE OR REPLACE TABLE one AS SELECT 1 AS x;
CALL exec(input := 'one', output := 'env_out', command := 'printf "%s|%s|%s" "$RLJOB_POLICY_DIR" "$RLJOB_TOKENIZER" "${RLJOB_POLICY_DIR+set}" > ` +
			filepath.Join(out, name) + `-$RLJOB_STEP && cp "$RLJOB_INPUT" "$RLJOB_OUTPUT"');`
	}
	read := func(name string) []string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(b), "|")
	}

	mustRun(t, lake, config, execCall("none"), runOpt{run: "empty"})
	if got := read("none-0"); got[0] != "" || got[1] != "" || got[2] != "" {
		t.Errorf("a run without checkpoints: env %q, want RLJOB_POLICY_DIR unset", got)
	}

	mustRun(t, lake, config, initJob, runOpt{})
	// train on no rows commits the policy unchanged as this step's checkpoint (a cheap checkpoint writer).
	job := execCall("before") + `
CALL train(data := 'SELECT [1]::INTEGER[] AS prompt_tokens, [2]::INTEGER[] AS completion_tokens, [-1.0]::FLOAT[] AS logprobs, 0.0 AS advantage WHERE false');
` + execCall("after")
	mustRun(t, lake, config, job, runOpt{steps: 2})
	abs := func(p string) string {
		t.Helper()
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct{ file, want string }{
		{"before-1", abs(ckDir(t, lake, "r", 0))},
		{"after-1", abs(ckDir(t, lake, "r", 1))},
		{"before-2", abs(ckDir(t, lake, "r", 1))},
		{"after-2", abs(ckDir(t, lake, "r", 2))},
	} {
		got := read(tc.file)
		if got[0] != tc.want || got[1] != filepath.Join(tc.want, trainer.TokenizerFile) || got[2] != "set" {
			t.Errorf("%s: RLJOB_POLICY_DIR, RLJOB_TOKENIZER = %q, %q; want %q and its %s", tc.file, got[0], got[1], tc.want, trainer.TokenizerFile)
		}
		if _, err := os.Stat(got[1]); err != nil {
			t.Errorf("%s: RLJOB_TOKENIZER: %v", tc.file, err)
		}
	}
	if ckDir(t, lake, "r", 0) == ckDir(t, lake, "r", 1) {
		t.Fatal("steps 0 and 1 share a checkpoint folder: the test cannot tell them apart")
	}
}
