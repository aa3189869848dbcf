package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The fair set-ups' smoke test (issue 22 item 4): sft_format.sql, then
// oneshot_fmt.sql forked from it, and relift_fixed.sql / relift_random.sql
// forked from the arith SFT run, each a dry run and 2 steps of 4 prompts
// (recipeRun, scalar, copyLake, mustFloat: recipes_test.go), with each one's mechanism
// checked in the lake: the format start mostly writes the extra '=', one-shot
// trains on exactly one prompt fixed before step 1, relift_fixed's bucket is
// the start's failures probed at step 1 only and its SFT rows are bucket
// prompts' references, relift_random's SFT rows are a hash draw of the train
// prompts, not chosen by failure.
func TestRecipesFairSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two SFT warm-ups and three recipes for 2 steps (about 30 s)")
	}
	base := filepath.Join(t.TempDir(), "lake")
	recipeRun(t, "run", arith+"/prepare.sql", "--lake", base, "--run", "sft", "--seed", "1")
	recipeRun(t, "run", arith+"/sft.sql", "--lake", base, "--run", "sft", "--seed", "1")
	recipeRun(t, "run", arith+"/prepare.sql", "--lake", base, "--run", "sftfmt", "--seed", "1")
	// a shorter format warm-up (500 updates) than sft_format.sql's 1,250: it learns the '=' first
	recipeRun(t, "run", filepath.Join(recipesDir, "sft_format.sql"), "--lake", base, "--run", "sftfmt", "--seed", "1", "--set", "sft_epochs=8")

	cases := []struct {
		name  string
		from  string
		args  []string
		check func(t *testing.T, lake, run string)
	}{
		{name: "oneshot_fmt", from: "sftfmt", args: []string{"--set", "probe_prompts=32", "--set", "n_one=16"}, check: checkOneshotFmt},
		{name: "relift_fixed", from: "sft", args: []string{"--set", "prompts_per_step=4", "--set", "probe_prompts=64", "--set", "relift_sft=2"}, check: checkReliftFixed},
		{name: "relift_random", from: "sft", args: []string{"--set", "prompts_per_step=4", "--set", "relift_sft=2"}, check: checkReliftRandom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := filepath.Join(recipesDir, c.name+".sql")
			lake := copyLake(t, base)
			run := c.name
			if out := recipeRun(t, "run", job, "--lake", lake, "--run", run, "--dry-run"); !strings.Contains(out, "ok: ") {
				t.Fatalf("dry run: %s", out)
			}
			recipeRun(t, "run", filepath.Join(recipesDir, "fork.sql"), "--lake", lake, "--run", run, "--seed", "1", "--set", "from="+c.from)
			recipeRun(t, append([]string{"run", job, "--lake", lake, "--run", run, "--seed", "1", "--steps", "2"}, c.args...)...)
			if got := scalar(t, lake, "SELECT string_agg(DISTINCT step::VARCHAR, '-' ORDER BY step::VARCHAR) FROM calls WHERE run = '"+run+"' AND stage = 'train' AND status = 'done'"); got != "1-2" {
				t.Errorf("train done at steps %q, want 1-2", got)
			}
			c.check(t, lake, run)
		})
	}
}

// probeOnce: the run's probe rollouts are want (prompts x samples), all at step 1.
func probeOnce(t *testing.T, lake, run, want string) {
	t.Helper()
	got := scalar(t, lake, "SELECT string_agg(step || ':' || p || 'x' || n, ' ') FROM (SELECT step, count(DISTINCT prompt_id) AS p, count(*) AS n FROM rollouts WHERE run = '"+run+"' AND tag = 'probe' GROUP BY step)")
	if got != "1:"+want {
		t.Errorf("probe rollouts per step = %q, want \"1:%s\" (at step 1 only)", got, want)
	}
}

func checkOneshotFmt(t *testing.T, lake, run string) {
	probeOnce(t, lake, run, "32x256")
	// the start knows the digits but mostly ends them with '=' (the exact verifier rejects it)
	got := scalar(t, lake, `SELECT round(avg(CASE WHEN ends_with(completion, '=') THEN 1.0 ELSE 0 END), 2) > 0.5
		AND avg(CASE WHEN correct THEN 1.0 ELSE 0 END) < 0.3 FROM scored WHERE run = '`+run+`' AND tag = 'probe'`)
	if got != "true" {
		t.Errorf("probe of the format start: want most completions ending in '=' and exact pass rate < 0.3")
	}
	// one prompt, 16 samples per step, the same prompt both steps: the probe's largest p(1-p)
	got = scalar(t, lake, "SELECT string_agg(p || 'x' || n, ' ' ORDER BY step) || ' ' || count(DISTINCT id) FROM (SELECT step, count(DISTINCT prompt_id) AS p, count(*) AS n, any_value(prompt_id) AS id FROM rollouts WHERE run = '"+run+"' AND tag = 'train' GROUP BY step)")
	if got != "1x16 1x16 1" {
		t.Errorf("prompts x rollouts per step and distinct prompts = %q, want \"1x16 1x16 1\"", got)
	}
	want := scalar(t, lake, `SELECT prompt_id FROM (SELECT prompt_id, avg(CASE WHEN correct THEN 1.0 ELSE 0 END) AS p FROM scored
		WHERE run = '`+run+`' AND tag = 'probe' GROUP BY prompt_id) ORDER BY p * (1 - p) DESC, prompt_id LIMIT 1`)
	if got := scalar(t, lake, "SELECT any_value(prompt_id) FROM rollouts WHERE run = '"+run+"' AND tag = 'train'"); got != want {
		t.Errorf("one-shot prompt %s, want the probe's largest-variance prompt %s", got, want)
	}
}

// sftRowsMatch: per step, relift_sft holds relift/sft_rows rows (2), sft
// trained on exactly them, and each completion is its prompt's reference.
func sftRowsMatch(t *testing.T, lake, run string) {
	t.Helper()
	bad := query(t, lake, `WITH r AS (SELECT step, count(*) AS n FROM relift_sft WHERE run = '`+run+`' GROUP BY step),
		m AS (SELECT step, max(value) FILTER (name = 'relift/sft_rows') AS rows, max(value) FILTER (name = 'sft/sequences') AS seqs FROM metrics WHERE run = '`+run+`' GROUP BY step)
		SELECT 'step ' || step || ': ' || n || ' rows, metric ' || rows || ', sft ' || seqs FROM r FULL JOIN m USING (step) WHERE n IS DISTINCT FROM 2 OR rows IS DISTINCT FROM 2 OR seqs IS DISTINCT FROM 2
		UNION ALL
		SELECT 'row ' || s.prompt_id || ': ' || s.completion || ' vs ' || coalesce(p.answer, 'no train prompt') FROM relift_sft AS s
		LEFT JOIN prompts AS p ON p.run = s.run AND p.prompt_id = s.prompt_id AND p.split = 'train'
		WHERE s.run = '`+run+`' AND s.completion IS DISTINCT FROM p.answer`)
	if strings.TrimSpace(bad) != "" {
		t.Errorf("SFT rows:\n%s", bad)
	}
}

func checkReliftFixed(t *testing.T, lake, run string) {
	probeOnce(t, lake, run, "64x512")
	sftRowsMatch(t, lake, run)
	// the bucket (probe prompts with 0 of 8 correct) is fixed: both steps log its size, the
	// same; every SFT row is a bucket prompt
	bucket := `SELECT prompt_id FROM scored WHERE run = '` + run + `' AND tag = 'probe' GROUP BY prompt_id HAVING count_if(correct) = 0`
	size := scalar(t, lake, "SELECT count(*)::DOUBLE FROM ("+bucket+")")
	if mustFloat(t, size) < 2 {
		t.Fatalf("bucket of %s prompts: the check needs at least 2 (relift_sft=2)", size)
	}
	if got := scalar(t, lake, "SELECT string_agg(value::VARCHAR, ' ' ORDER BY step) FROM metrics WHERE run = '"+run+"' AND name = 'relift/bucket_size'"); got != size+" "+size {
		t.Errorf("relift/bucket_size per step = %q, want %s at both steps", got, size)
	}
	if got := scalar(t, lake, "SELECT count(*) FROM relift_sft WHERE run = '"+run+"' AND prompt_id NOT IN ("+bucket+")"); got != "0" {
		t.Errorf("%s SFT rows outside the bucket", got)
	}
}

func checkReliftRandom(t *testing.T, lake, run string) {
	sftRowsMatch(t, lake, run)
	if got := scalar(t, lake, "SELECT count(*) FROM rollouts WHERE run = '"+run+"' AND tag = 'probe'"); got != "0" {
		t.Errorf("%s probe rollouts: the control must not look at failures", got)
	}
	// the rows are the first 2 train prompts of the step's own hash order
	bad := query(t, lake, `WITH want AS (SELECT s.step, p.prompt_id FROM (SELECT DISTINCT step FROM relift_sft WHERE run = '`+run+`') AS s, prompts AS p
			WHERE p.run = '`+run+`' AND p.split = 'train'
			QUALIFY row_number() OVER (PARTITION BY s.step ORDER BY hash(p.prompt_id, s.step, 'relift_random'), p.prompt_id) <= 2)
		SELECT step || ' ' || prompt_id FROM (SELECT step, prompt_id FROM want EXCEPT SELECT step, prompt_id FROM relift_sft WHERE run = '`+run+`')`)
	if strings.TrimSpace(bad) != "" {
		t.Errorf("SFT rows not the step's hash draw:\n%s", bad)
	}
}
