package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// passk_eval.sql (make compare's large-k evaluation) on a fresh arith
// policy, small: 10 prompts × 16 samples. Its prompts are the first test
// prompts in md5(prompt) order whatever the seed; passk_counts holds one
// row per prompt with n and c of the step's 'evalk' rollouts; the metrics
// are the unbiased estimator's means over those counts (pass@1 = mean c/n,
// pass@16 = coverage@16 = share of prompts with c > 0 when n = 16).
func TestPasskEval(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs an arith job")
	}
	job := filepath.Join(recipesDir, "passk_eval.sql")
	small := []string{"--set", "passk_prompts=10", "--set", "passk_n=16"}
	var picked []string
	for _, seed := range []string{"1", "2"} {
		lake := filepath.Join(t.TempDir(), "lake")
		recipeRun(t, "run", arith+"/prepare.sql", "--lake", lake, "--run", "r", "--seed", seed)
		recipeRun(t, append([]string{"run", job, "--lake", lake, "--run", "r", "--seed", seed}, small...)...)
		want := query(t, lake, "SELECT prompt_id FROM prompts WHERE split = 'test' ORDER BY md5(prompt), prompt LIMIT 10")
		got := query(t, lake, "SELECT k.prompt_id FROM passk_counts AS k JOIN prompts AS p ON p.run = k.run AND p.prompt_id = k.prompt_id WHERE k.run = 'r' ORDER BY md5(p.prompt), p.prompt")
		if got != want || strings.Count(got, "\n") != 10 {
			t.Fatalf("seed %s: passk_counts prompts\n%s\nwant the first 10 test prompts by md5(prompt)\n%s", seed, got, want)
		}
		picked = append(picked, got)
		bad := query(t, lake, `SELECT k.prompt_id FROM passk_counts AS k
			JOIN (SELECT prompt_id, count(*) AS n, count_if(correct) AS c FROM scored WHERE run = 'r' AND tag = 'evalk' GROUP BY ALL) AS s USING (prompt_id)
			WHERE k.n <> 16 OR k.n <> s.n OR k.c <> s.c`)
		if bad != "" {
			t.Errorf("seed %s: passk_counts rows that do not match the evalk rollouts (or n ≠ 16): %s", seed, bad)
		}
		for name, q := range map[string]string{
			"pass@1":      "SELECT avg(c / n) FROM passk_counts",
			"pass@16":     "SELECT avg(CASE WHEN c > 0 THEN 1.0 ELSE 0.0 END) FROM passk_counts",
			"coverage@16": "SELECT avg(CASE WHEN c > 0 THEN 1.0 ELSE 0.0 END) FROM passk_counts",
			"pass@4":      "SELECT avg(pass_at_k(n, c, 4)) FROM passk_counts",
			"prompts":     "SELECT 10",
			"policy_step": "SELECT 0",
			"n":           "SELECT 16",
		} {
			got := scalar(t, lake, "SELECT value FROM metrics WHERE run = 'r' AND name = 'val/arith_k/"+name+"'")
			if want := scalar(t, lake, q); !sameFloat(got, want) {
				t.Errorf("seed %s: val/arith_k/%s = %s, want %s", seed, name, got, want)
			}
		}
		if n := scalar(t, lake, "SELECT count(*) FROM metrics WHERE run = 'r' AND name LIKE 'val/arith_k/pass@%'"); n != "5" {
			t.Errorf("seed %s: %s pass@k metrics, want 5 (k = 1, 2, 4, 8, 16 ≤ n)", seed, n)
		}
		if n := scalar(t, lake, "SELECT count(*) FROM rollouts WHERE run = 'r' AND tag = 'train'"); n != "0" {
			t.Errorf("seed %s: %s train rollouts, want 0 (evalk only)", seed, n)
		}
	}
	if picked[0] != picked[1] {
		t.Errorf("the prompts differ between seeds")
	}
}
