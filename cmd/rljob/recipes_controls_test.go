package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The controls' smoke test (examples/recipes/README.md, "Controls"): like
// TestRecipesSmoke, every control job passes --dry-run, then runs 2 steps
// with 4 prompts per step from a forked SFT run, and its mechanism is
// checked in the lake: sft_equal trains on reference answers, RFT on the
// policy's own correct samples only, PSR on the correct rows with advantage
// +1, and DAPO with updates_per_step=1 makes one optimizer update per step.

func TestRecipesControlsSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs every control for 2 steps (about 15 s)")
	}
	base := filepath.Join(t.TempDir(), "lake")
	recipeRun(t, "run", arith+"/prepare.sql", "--lake", base, "--run", "sft", "--seed", "1")
	recipeRun(t, "run", arith+"/sft.sql", "--lake", base, "--run", "sft", "--seed", "1")

	cases := []struct {
		name, file, stage string // stage: the update stage (train or sft)
		args              []string
		check             func(t *testing.T, lake, run string)
	}{
		{name: "sft_equal", stage: "sft", check: checkSFTEqual},
		{name: "rft", stage: "sft", check: checkRFT},
		{name: "psr", stage: "train", check: checkPSR},
		{name: "dapo_1update", file: "dapo", stage: "train", args: []string{"--set", "updates_per_step=1"}, check: checkOneUpdate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.name
			if c.file != "" {
				file = c.file
			}
			lake := runForkedControl(t, base, c.name, filepath.Join(recipesDir, file+".sql"), c.args...)
			if got := scalar(t, lake, "SELECT string_agg(step::VARCHAR, '-' ORDER BY step) FROM calls WHERE run = '"+c.name+"' AND stage = '"+c.stage+"' AND status = 'done'"); got != "1-2" {
				t.Errorf("%s done at steps %q, want one call at each of 1-2", c.stage, got)
			}
			// one optimizer update per step: AdamW's step count after step 2 is 2
			if got := adamSteps(t, lake, c.name, 2); got != 2 {
				t.Errorf("AdamW updates after step 2 = %d, want 2 (one per step)", got)
			}
			c.check(t, lake, c.name)
		})
	}
}

// runForkedControl copies the SFT lake, dry-runs job, forks run from the SFT
// run and runs 2 steps of job with 4 prompts per step; it returns the lake.
func runForkedControl(t *testing.T, base, run, job string, args ...string) string {
	t.Helper()
	lake := copyLake(t, base)
	if out := recipeRun(t, "run", job, "--lake", lake, "--run", run, "--dry-run"); !strings.Contains(out, "ok: ") {
		t.Fatalf("dry run: %s", out)
	}
	recipeRun(t, "run", filepath.Join(recipesDir, "fork.sql"), "--lake", lake, "--run", run, "--seed", "1", "--set", "from=sft")
	recipeRun(t, append([]string{"run", job, "--lake", lake, "--run", run, "--seed", "1", "--steps", "2", "--set", "prompts_per_step=4"}, args...)...)
	return lake
}

// adamSteps reads AdamW's update count from the checkpoint of run's step.
func adamSteps(t *testing.T, lake, run string, step int) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(lake, "checkpoints", "run="+run, "step="+strconv.Itoa(step), "part-*", "trainer_state.json"))
	if len(files) != 1 {
		t.Fatalf("step %d of %s: %d checkpoints %v, want 1", step, run, len(files), files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		AdamW struct{ Step int } `json:"adamw"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return st.AdamW.Step
}

// checkSFTEqual: per step 4 × 8 = 32 distinct train prompts with their
// reference answers (sft/tokens = their answers' characters + EOS), and
// nothing sampled.
func checkSFTEqual(t *testing.T, lake, run string) {
	want := scalar(t, lake, `SELECT string_agg(n || '/' || tok, ' ' ORDER BY step) FROM (
		SELECT s.step, count(DISTINCT p.prompt_id)::DOUBLE AS n, sum(length(p.answer) + 1)::DOUBLE AS tok
		FROM (VALUES (1), (2)) AS s(step), LATERAL (
			SELECT prompt_id, answer FROM prompts WHERE run = '`+run+`' AND split = 'train'
			ORDER BY hash(prompt_id, s.step) LIMIT 32) AS p GROUP BY s.step)`)
	got := scalar(t, lake, `SELECT string_agg(n || '/' || tok, ' ' ORDER BY step) FROM (
		SELECT step, max(value) FILTER (name = 'sft/sequences') AS n, max(value) FILTER (name = 'sft/tokens') AS tok
		FROM metrics WHERE run = '`+run+`' GROUP BY step)`)
	if want != "32.0/128.0 32.0/128.0" || got != want {
		t.Errorf("sft sequences/tokens per step = %q, want 32 distinct prompts' answers + EOS: %q", got, want)
	}
	if n := scalar(t, lake, "SELECT count(*) FROM rollouts WHERE run = '"+run+"'"); n != "0" {
		t.Errorf("%s rollouts sampled, want none", n)
	}
}

// checkRFT: each step's one sft update saw exactly that step's distinct
// correct completions per prompt (on arith: one per solved prompt) and
// their sampled completion tokens (sft appends EOS; a correct completion is
// its answer's digits then EOS), not every correct rollout (that is PSR).
func checkRFT(t *testing.T, lake, run string) {
	counts := scalar(t, lake, "SELECT count_if(correct) || '/' || count_if(NOT correct) FROM scored WHERE run = '"+run+"' AND tag = 'train'")
	if strings.HasPrefix(counts, "0/") || strings.HasSuffix(counts, "/0") {
		t.Fatalf("correct/wrong rollouts %s: the check needs both kinds", counts)
	}
	want := scalar(t, lake, `SELECT string_agg(n || '/' || tok, ' ' ORDER BY step) FROM (
		SELECT step, count(*)::DOUBLE AS n, sum(len(completion_tokens))::DOUBLE AS tok FROM (
			SELECT DISTINCT step, prompt_id, completion_tokens FROM scored WHERE run = '`+run+`' AND tag = 'train' AND correct)
		GROUP BY step)`)
	solved := scalar(t, lake, `SELECT string_agg(n::DOUBLE || '/' || (4 * n)::DOUBLE, ' ' ORDER BY step) FROM (
		SELECT step, count(DISTINCT prompt_id) FILTER (correct) AS n FROM scored WHERE run = '`+run+`' AND tag = 'train' GROUP BY step)`)
	if want != solved {
		t.Errorf("distinct correct completions/tokens per step %q, want one 4-token answer per solved prompt %q", want, solved)
	}
	got := scalar(t, lake, `SELECT string_agg(n || '/' || tok, ' ' ORDER BY step) FROM (
		SELECT step, max(value) FILTER (name = 'sft/sequences') AS n, max(value) FILTER (name = 'sft/tokens') AS tok
		FROM metrics WHERE run = '`+run+`' GROUP BY step)`)
	if got != want {
		t.Errorf("sft sequences/tokens per step = %q, want the distinct correct completions and their sampled tokens %q", got, want)
	}
	// the kept completions are the policy's: its sampled text, ending in EOS
	if bad := scalar(t, lake, "SELECT count(*) FROM scored WHERE run = '"+run+"' AND tag = 'train' AND correct AND (completion <> answer OR len(completion_tokens) <> length(answer) + 1)"); bad != "0" {
		t.Errorf("%s correct rollouts whose completion is not answer + EOS", bad)
	}
}

// checkPSR: train saw the correct rollouts only, all with advantage +1.
func checkPSR(t *testing.T, lake, run string) {
	want := scalar(t, lake, "SELECT count(*)::DOUBLE FROM scored WHERE run = '"+run+"' AND tag = 'train' AND correct")
	if w := mustFloat(t, want); w == 0 || w == 64 {
		t.Fatalf("%s of 64 rollouts correct: the check needs both kinds", want)
	}
	if got := scalar(t, lake, "SELECT sum(value) FROM metrics WHERE run = '"+run+"' AND name = 'train/sequences'"); !sameFloat(got, want) {
		t.Errorf("PSR trained on %s sequences, want the %s correct rollouts", got, want)
	}
	bad := scalar(t, lake, `SELECT count(*) FROM metrics WHERE run = '`+run+`'
		AND name IN ('critic/advantages/min', 'critic/advantages/max') AND value <> 1`)
	if bad != "0" {
		t.Errorf("%s advantage min/max metrics other than +1", bad)
	}
}

// checkOneUpdate: with one minibatch the update is on-policy (ρ = 1), so
// no token is clipped and the measured KL to π_old is 0.
func checkOneUpdate(t *testing.T, lake, run string) {
	if got := scalar(t, lake, `SELECT count(*) FROM metrics WHERE run = '`+run+`'
		AND name IN ('actor/ppo_kl', 'actor/pg_clipfrac') AND value <> 0`); got != "0" {
		t.Errorf("%s steps with ppo_kl or pg_clipfrac != 0: not one on-policy update", got)
	}
}
