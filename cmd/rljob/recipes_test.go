package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The recipe smoke test: every job file of examples/recipes passes
// --dry-run, then runs 2 steps on a tiny arith lake (prepare.sql + sft.sql,
// 4 prompts per step) started from a shared SFT run with
// fork.sql, as make compare does; each recipe's own mechanism is checked in
// the lake it wrote (the refill rounds ran, the replayed rows carry their
// behaviour log-probs, NSR trains on the wrong rollouts only, ...).

var recipesDir, _ = filepath.Abs("../../examples/recipes")

// recipeRun runs rljob in-process and fails the test on a non-zero exit.
func recipeRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := rljob(t, nil, append(args, "--log-format", "json")...)
	if code != 0 {
		t.Fatalf("rljob %s: exit %d\n%s", strings.Join(args, " "), code, tail(stderr, 3000))
	}
	return out
}

// scalar runs a one-value query over the lake.
func scalar(t *testing.T, lake, q string) string {
	t.Helper()
	return strings.TrimSpace(query(t, lake, q))
}

func TestRecipesSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs every recipe for 2 steps (about 20 s)")
	}
	base := filepath.Join(t.TempDir(), "lake")
	// The full SFT warm-up (about 5 s): a policy that solves about half the
	// prompts, so every check below sees correct and incorrect rollouts.
	recipeRun(t, "run", arith+"/prepare.sql", "--lake", base, "--run", "sft", "--seed", "1")
	recipeRun(t, "run", arith+"/sft.sql", "--lake", base, "--run", "sft", "--seed", "1")

	small := []string{"--set", "prompts_per_step=4"} // a recipe's own --set values are in its args
	cases := []struct {
		name  string
		check func(t *testing.T, lake, run string)
		file  string   // the job file's name when it is not name (a variant)
		args  []string // more --set arguments, after small's
	}{
		{name: "baseline", check: func(t *testing.T, lake, run string) {
			// uniform: 4 prompts × 8 samples per step, all trained on
			if got := scalar(t, lake, "SELECT sum(value) FROM metrics WHERE run = '"+run+"' AND name = 'train/sequences'"); got != "64.0" {
				t.Errorf("train/sequences over 2 steps = %s, want 64", got)
			}
		}},
		{name: "curriculum", check: func(t *testing.T, lake, run string) {
			// step 1 has no history (level 0.5, band [0.25, 0.75]); step 2's level is step 1's pass rate
			want := scalar(t, lake, "SELECT avg(CASE WHEN correct THEN 1.0 ELSE 0.0 END) FROM scored WHERE run = '"+run+"' AND step = 1 AND tag = 'train'")
			got := scalar(t, lake, "SELECT value FROM metrics WHERE run = '"+run+"' AND step = 2 AND name = 'curriculum/level'")
			if !sameFloat(got, want) {
				t.Errorf("curriculum/level at step 2 = %s, want step 1's pass rate %s", got, want)
			}
		}},
		{name: "curriculum_hints", file: "curriculum", args: []string{"--set", "hints=1", "--set", "prompts_per_step=16"}, check: func(t *testing.T, lake, run string) {
			// 16 prompts per step: step 1's untried prompts include all-wrong groups
			if n := scalar(t, lake, "SELECT count(*) FROM scored WHERE run = '"+run+"' AND tag = 'train' AND hint <> ''"); n == "0" {
				t.Fatalf("no hinted rollouts: the check needs some")
			}
			bad := query(t, lake, `WITH s AS (SELECT s.*, p.prompt AS base FROM scored AS s JOIN prompts AS p ON p.run = s.run AND p.prompt_id = s.prompt_id
					WHERE s.run = '`+run+`' AND s.tag = 'train'),
				g AS (SELECT step, prompt_id, length(hint) AS l, count_if(correct) AS c FROM s GROUP BY ALL)
				-- a hinted prompt is the prompt plus a proper prefix of its answer
				SELECT 'prompt ' || prompt || ' hint ' || hint FROM s
				WHERE prompt <> base || hint OR NOT starts_with(answer, hint) OR length(hint) >= length(answer)
				UNION ALL
				-- the verifier checked hint || completion against the whole answer
				SELECT 'rollout ' || rollout_id || ': correct ' || correct || ' for ' || hint || '+' || completion || ' vs ' || answer FROM s
				WHERE correct IS DISTINCT FROM (hint || completion = answer) OR extracted IS DISTINCT FROM hint || completion
				UNION ALL
				-- a hint of length l only after an all-wrong group with l - 1
				SELECT 'group ' || step || '/' || prompt_id || '/' || l FROM g
				WHERE l > 0 AND NOT EXISTS (SELECT 1 FROM g AS h WHERE h.step = g.step AND h.prompt_id = g.prompt_id AND h.l = g.l - 1 AND h.c = 0)
				UNION ALL
				-- an all-wrong group always got a longer hint when one was possible (3-digit answers: up to 2)
				SELECT 'no hint after ' || step || '/' || prompt_id || '/' || l FROM g
				WHERE c = 0 AND l < 2 AND NOT EXISTS (SELECT 1 FROM g AS h WHERE h.step = g.step AND h.prompt_id = g.prompt_id AND h.l = g.l + 1)`)
			if strings.TrimSpace(bad) != "" {
				t.Errorf("hints:\n%s", bad)
			}
			// train sees each prompt's newest (longest-hint) group only
			want := scalar(t, lake, `SELECT count(*)::DOUBLE FROM (SELECT step, prompt_id, hint, max(length(hint)) OVER (PARTITION BY step, prompt_id) AS m
				FROM scored WHERE run = '`+run+`' AND tag = 'train') WHERE length(hint) = m`)
			got := scalar(t, lake, "SELECT sum(value) FROM metrics WHERE run = '"+run+"' AND name = 'train/sequences'")
			if !sameFloat(got, want) {
				t.Errorf("train/sequences over 2 steps = %s, want the %s rows of the newest groups", got, want)
			}
		}},
		{name: "dapo", check: func(t *testing.T, lake, run string) {
			// Refill until full (a WHILE loop): per step, the rounds that ran are the
			// step's done rollout calls and dapo/rounds; every round but the last kept
			// fewer than 4 groups; the last kept 4, or was the 10th, or used up the
			// pool; the step trained on min(4, kept after its last round) groups.
			got := query(t, lake, `WITH m AS (SELECT step, name, value FROM metrics WHERE run = '`+run+`'),
				k AS (SELECT step, CAST(regexp_extract(name, '_([0-9]+)$', 1) AS INT) AS r, value AS kept FROM m WHERE name LIKE 'dapo/kept_after_round_%'),
				want AS (SELECT step, count(*) AS rounds, count_if(kept >= 4 AND r < (SELECT max(r) FROM k AS l WHERE l.step = k.step)) AS early,
				                arg_max(kept, r) AS kept_last FROM k GROUP BY step),
				pool AS (SELECT count(*) AS n FROM prompts WHERE run = '`+run+`' AND split = 'train'),
				calls AS (SELECT step, count(*) AS done FROM calls WHERE run = '`+run+`' AND stage = 'rollout' AND status = 'done' AND shard = 0 GROUP BY step),
				lg AS (SELECT step, max(value) FILTER (name = 'dapo/rounds') AS rounds, max(value) FILTER (name = 'train/groups_informative') AS g,
				              max(value) FILTER (name = 'dapo/prompts_sampled') AS sampled FROM m GROUP BY step)
				SELECT step || ':' || want.rounds || '/' || lg.rounds || '/' || calls.done || '/' || want.early || '/' || want.kept_last || '/' || lg.g
				FROM want JOIN lg USING (step) JOIN calls USING (step)
				WHERE want.rounds <> lg.rounds OR lg.rounds <> calls.done OR want.early > 0 OR lg.g <> least(4, want.kept_last)
				   OR (want.kept_last < 4 AND want.rounds < 10 AND lg.sampled < (SELECT n FROM pool))
				UNION ALL SELECT 'steps ' || count(*) FROM want HAVING count(*) <> 2`)
			if strings.TrimSpace(got) != "" {
				t.Errorf("steps where the refill rounds did not stop exactly when full (step:rounds logged/metric/rollout calls/full before the last/kept after the last/trained groups):\n%s", got)
			}
			// a step that ran refill rounds sampled more than 4 prompts, one that did not exactly 4
			if got := scalar(t, lake, `SELECT count(*) FROM (SELECT step, count(DISTINCT prompt_id) AS p FROM rollouts WHERE run = '`+run+`' AND tag = 'train' GROUP BY step)
				JOIN (SELECT step, value AS rounds FROM metrics WHERE run = '`+run+`' AND name = 'dapo/rounds') USING (step)
				WHERE (rounds = 1) <> (p = 4)`); got != "0" {
				t.Errorf("%s steps whose sampled prompts (4 = no refill) disagree with their rounds", got)
			}
		}},
		{name: "replay", args: []string{"--set", "replay_prompts=2", "--set", "replay_max_pass_rate=1"}, check: func(t *testing.T, lake, run string) {
			// the logprobs call recomputed this step's rollouts bit for bit
			if got := scalar(t, lake, "SELECT count(*) FROM replay_logprobs lp JOIN rollouts r USING (run, step, rollout_id) WHERE r.run = '"+run+"' AND lp.logprobs IS DISTINCT FROM r.logprobs"); got != "0" {
				t.Errorf("%s of this step's rollouts have recomputed logprobs != behaviour logprobs", got)
			}
			if got := scalar(t, lake, "SELECT count(*) FROM replay_logprobs WHERE run = '"+run+"'"); got == "0" {
				t.Errorf("no logprobs recomputed")
			}
			// replayed rows (an earlier step's rollouts in a step's logprobs call): per prompt at
			// most one correct and one incorrect (RoRecomp's long-incorrect half), an incorrect one
			// only beside a correct one, and replay/rows counts those of the step's prompts
			bad := query(t, lake, `WITH old AS (
					SELECT lp.step, s.prompt_id, s.correct FROM replay_logprobs AS lp
					JOIN scored AS s ON s.run = lp.run AND s.rollout_id = lp.rollout_id AND s.step < lp.step
					WHERE lp.run = '`+run+`'),
				per AS (SELECT step, prompt_id, count_if(correct) AS c, count_if(NOT correct) AS w FROM old GROUP BY ALL),
				used AS (SELECT step, count(*) AS n FROM old WHERE prompt_id IN (SELECT prompt_id FROM rollouts AS r WHERE r.run = '`+run+`' AND r.step = old.step) GROUP BY step)
				SELECT 'prompt ' || prompt_id || ' step ' || step || ': ' || c || ' correct, ' || w || ' incorrect' FROM per WHERE c <> 1 OR w > 1
				UNION ALL
				SELECT 'step ' || m.step || ': replay/rows ' || m.value || ', replayed rows of its prompts ' || coalesce(u.n, 0)
				FROM metrics AS m LEFT JOIN used AS u USING (step)
				WHERE m.run = '`+run+`' AND m.name = 'replay/rows' AND m.value <> coalesce(u.n, 0)`)
			if strings.TrimSpace(bad) != "" {
				t.Errorf("replayed rows:\n%s", bad)
			}
			// with replay_max_pass_rate=1 step 2 replays step 1's prompts: both halves must show
			got := scalar(t, lake, "SELECT string_agg(name || '=' || value, ' ' ORDER BY name) FROM metrics WHERE run = '"+run+"' AND step = 2 AND name IN ('replay/rows', 'replay/rows_incorrect')")
			if got != "replay/rows=4.0 replay/rows_incorrect=2.0" {
				t.Errorf("step 2 replayed %q, want 2 prompts × (short correct + long incorrect): replay/rows=4.0 replay/rows_incorrect=2.0", got)
			}
		}},
		{name: "nsr", check: func(t *testing.T, lake, run string) {
			want := scalar(t, lake, "SELECT count(*)::DOUBLE FROM scored WHERE run = '"+run+"' AND tag = 'train' AND NOT correct")
			if w := mustFloat(t, want); w == 0 || w == 64 {
				t.Fatalf("%s of 64 rollouts incorrect: the check needs both kinds", want)
			}
			got := scalar(t, lake, "SELECT sum(value) FROM metrics WHERE run = '"+run+"' AND name = 'train/sequences'")
			if !sameFloat(got, want) {
				t.Errorf("NSR trained on %s sequences, want the %s incorrect rollouts", got, want)
			}
		}},
		{name: "wreinforce", check: func(t *testing.T, lake, run string) {
			// advantages +0.1 / -1: critic/advantages/max is 0.1 in a step with a correct rollout, else -1
			bad := scalar(t, lake, `SELECT count(*) FROM metrics AS m
				JOIN (SELECT step, bool_or(correct) AS any_correct FROM scored WHERE run = '`+run+`' AND tag = 'train' GROUP BY step) USING (step)
				WHERE m.run = '`+run+`' AND m.name = 'critic/advantages/max'
				  AND abs(m.value - CASE WHEN any_correct THEN 0.1 ELSE -1 END) > 1e-6`)
			if bad != "0" {
				t.Errorf("%s steps with critic/advantages/max other than 0.1 (a correct rollout) or -1 (none)", bad)
			}
		}},
		{name: "passk", check: func(t *testing.T, lake, run string) {
			if got := scalar(t, lake, "SELECT count(*) FROM metrics WHERE run = '"+run+"' AND name = 'passk/group_pass_at_k_mean'"); got != "2" {
				t.Errorf("%s passk metrics, want 2", got)
			}
		}},
		{name: "oneshot", args: []string{"--set", "n_one=16"}, check: func(t *testing.T, lake, run string) {
			// step 1 probes 4 prompts × 8; step 2 samples one prompt 16 times
			got := scalar(t, lake, "SELECT string_agg(p || 'x' || n, ' ' ORDER BY step) FROM (SELECT step, count(DISTINCT prompt_id) AS p, count(*) AS n FROM rollouts WHERE run = '"+run+"' AND tag = 'train' GROUP BY step)")
			if got != "4x32 1x16" {
				t.Errorf("prompts x rollouts per step = %q, want \"4x32 1x16\"", got)
			}
		}},
		{name: "critique", check: func(t *testing.T, lake, run string) {
			// a second turn exactly after a wrong first answer; none after a right one
			tr := "FROM turns AS u JOIN rollouts AS r USING (run, step, rollout_id) JOIN prompts AS p ON p.run = r.run AND p.prompt_id = r.prompt_id WHERE u.run = '" + run + "' AND u.tag = 'train'"
			if n := scalar(t, lake, "SELECT count(*) "+tr+" AND u.turn = 1"); n == "0" {
				t.Fatalf("no second turns: the check needs some")
			}
			bad := query(t, lake, `SELECT 'turn 0 of ' || rollout_id || ': ' || u.text || ' vs ' || p.answer || ', ' || r.num_turns || ' turns' `+tr+`
				AND u.turn = 0 AND (trim(u.text) = p.answer) <> (r.num_turns = 1)
				UNION ALL
				-- the verdict: the observation after a wrong answer is <|unk|> and the prompt, its
				-- tokens are in the sequence and masked out (policy_mask false), turn 1 starts after it
				SELECT 'verdict of ' || rollout_id `+tr+` AND u.turn = 0 AND r.num_turns = 2
				AND (u.observation IS DISTINCT FROM '<|unk|>' || p.prompt OR u.observation_tokens <> length(p.prompt) + 1
				     OR len(list_filter(r.policy_mask, m -> NOT m)) <> u.observation_tokens
				     OR r.turn_offsets[2] <> u.policy_tokens + u.observation_tokens
				     OR list_bool_or(list_slice(r.policy_mask, u.policy_tokens + 1, r.turn_offsets[2])) IS DISTINCT FROM false)
				UNION ALL
				-- turn rewards are the exact rule; the episode's reward is its final answer's
				SELECT 'reward of ' || rollout_id || '/' || u.turn `+tr+` AND u.reward IS DISTINCT FROM CASE WHEN trim(u.text) = p.answer THEN 1.0 ELSE 0.0 END
				UNION ALL
				SELECT 'final reward of ' || rollout_id FROM scored AS s JOIN turns AS u USING (run, step, rollout_id)
				WHERE s.run = '`+run+`' AND s.tag = 'train' AND u.turn = s.num_turns - 1 AND s.reward IS DISTINCT FROM u.reward`)
			if strings.TrimSpace(bad) != "" {
				t.Errorf("critique episodes:\n%s", bad)
			}
			// train saw one row per policy turn, and only the policy tokens of that turn
			want := scalar(t, lake, "SELECT count(*)::DOUBLE || ' ' || sum(policy_tokens)::DOUBLE FROM turns WHERE run = '"+run+"' AND tag = 'train'")
			got := scalar(t, lake, "SELECT sum(value) FILTER (name = 'train/sequences') || ' ' || sum(value) FILTER (name = 'train/tokens') FROM metrics WHERE run = '"+run+"'")
			if got != want {
				t.Errorf("train/sequences and train/tokens over 2 steps = %s, want the policy turns and their tokens %s", got, want)
			}
		}},
		{name: "lowlik", check: func(t *testing.T, lake, run string) {
			// step 2 focuses on the prompts step 1 solved at least once but not at >= 95%, at most
			// half the batch (2)
			want := scalar(t, lake, `SELECT least(2, count(*))::DOUBLE FROM (SELECT prompt_id, count_if(correct) AS c, avg(CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS p
				FROM scored WHERE run = '`+run+`' AND step = 1 AND tag = 'train' GROUP BY prompt_id) WHERE c > 0 AND p < 0.95`)
			if want == "0.0" {
				t.Fatalf("step 1 solved no prompt below 95%%: the check needs some")
			}
			got := scalar(t, lake, "SELECT value FROM metrics WHERE run = '"+run+"' AND step = 2 AND name = 'lowlik/focused'")
			if !sameFloat(got, want) {
				t.Errorf("lowlik/focused at step 2 = %s, want %s", got, want)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.name
			if c.file != "" {
				file = c.file
			}
			job := filepath.Join(recipesDir, file+".sql")
			lake := copyLake(t, base)
			run := c.name
			if out := recipeRun(t, "run", job, "--lake", lake, "--run", run, "--dry-run"); !strings.Contains(out, "ok: ") {
				t.Fatalf("dry run: %s", out)
			}
			recipeRun(t, "run", filepath.Join(recipesDir, "fork.sql"), "--lake", lake, "--run", run, "--seed", "1", "--set", "from=sft")
			recipeRun(t, append(append([]string{"run", job, "--lake", lake, "--run", run, "--seed", "1", "--steps", "2"}, small...), c.args...)...)
			if got := scalar(t, lake, "SELECT string_agg(DISTINCT step::VARCHAR, '-' ORDER BY step::VARCHAR) FROM calls WHERE run = '"+run+"' AND stage = 'train' AND status = 'done'"); got != "1-2" {
				t.Errorf("train done at steps %q, want 1-2", got)
			}
			c.check(t, lake, run)
		})
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return f
}

func sameFloat(a, b string) bool {
	x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	return err1 == nil && err2 == nil && (x-y < 1e-9 && y-x < 1e-9)
}
