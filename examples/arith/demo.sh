#!/bin/sh
# examples/arith/demo.sh — the arith RL demo end to end on a fresh lake:
#
#   prepare.sql (step 0: data + init_policy) → sft.sql (step 1: SFT warm-up)
#   → eval.sql (step 2: pass@k after SFT) → grpo.sql × STEPS → eval.sql
#
# then prints pass@1/4/16 before and after RL, the training reward per step
# and the wall time. Run from anywhere: sh examples/arith/demo.sh
#
# Environment: BIN (default bin/rljob), LAKE (default examples/arith/lake;
# deleted first), SEED (default 1), STEPS (GRPO steps, default 100), RUN (run
# name, default arith). SFT_SQL, GRPO_SQL and EVAL_SQL replace the job files
# (for experiments).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/rljob}
LAKE=${LAKE:-examples/arith/lake}
SEED=${SEED:-1}
STEPS=${STEPS:-100}
RUN=${RUN:-arith}
PREPARE_SQL=${PREPARE_SQL:-examples/arith/prepare.sql}
SFT_SQL=${SFT_SQL:-examples/arith/sft.sql}
GRPO_SQL=${GRPO_SQL:-examples/arith/grpo.sql}
EVAL_SQL=${EVAL_SQL:-examples/arith/eval.sql}
LOG=${LOG:-$LAKE.log}

if [ ! -x "$BIN" ]; then
	echo "demo: $BIN not found; build it first (make build)" >&2
	exit 2
fi
rm -rf "$LAKE"
mkdir -p "$(dirname "$LOG")"
: > "$LOG"
start=$(date +%s)

# run JOB STEPS: one rljob run, its log appended to $LOG.
run() {
	t0=$(date +%s)
	echo "\$ rljob run $1 --lake $LAKE --run $RUN --seed $SEED --steps $2"
	if ! "$BIN" run "$1" --lake "$LAKE" --run "$RUN" --seed "$SEED" --steps "$2" --log-format json >> "$LOG" 2>&1; then
		echo "demo: $1 failed; the last lines of $LOG:" >&2
		tail -n 5 "$LOG" >&2
		exit 1
	fi
	echo "  done in $(( $(date +%s) - t0 )) s"
}

run "$PREPARE_SQL" 1
run "$SFT_SQL" 1
run "$EVAL_SQL" 1
run "$GRPO_SQL" "$STEPS"
run "$EVAL_SQL" 1
wall=$(( $(date +%s) - start ))

sql() { "$BIN" sql --lake "$LAKE" "$@"; }

echo
echo "held-out pass@k (test split, 16 samples per prompt at temperature 1; greedy = temperature 0):"
sql "WITH e AS (
  SELECT step, name, value FROM metrics
  WHERE run = '$RUN' AND name LIKE 'val/arith/%'
), steps AS (SELECT min(step) AS first, max(step) AS last FROM e)
SELECT CASE WHEN e.step = steps.first THEN 'after SFT' ELSE 'after RL' END AS policy,
       CAST(max(value) FILTER (name = 'val/arith/policy_step') AS BIGINT) AS ckpt_step,
       round(max(value) FILTER (name = 'val/arith/pass@1'), 3)   AS \"pass@1\",
       round(max(value) FILTER (name = 'val/arith/pass@4'), 3)   AS \"pass@4\",
       round(max(value) FILTER (name = 'val/arith/pass@16'), 3)  AS \"pass@16\",
       round(max(value) FILTER (name = 'val/arith/greedy_acc'), 3) AS greedy
FROM e, steps
WHERE e.step IN (steps.first, steps.last)
GROUP BY ALL ORDER BY ckpt_step"

echo
echo "training curve (per GRPO step: mean reward over all 256 rollouts, share of groups kept by group_std > 0, policy entropy):"
sql "SELECT step,
       round(max(value) FILTER (name = 'train/reward_mean'), 3) AS reward_mean,
       round(max(value) FILTER (name = 'train/groups_kept'), 2) AS groups_kept,
       round(max(value) FILTER (name = 'actor/entropy'), 3) AS entropy
FROM metrics
WHERE run = '$RUN' AND step IN (SELECT step FROM metrics WHERE name = 'train/reward_mean')
GROUP BY step ORDER BY step"

echo
echo "reward curve in blocks of 10 GRPO steps (rljob sql over scored):"
sql "WITH s AS (
  SELECT step, avg(reward) AS r FROM scored
  WHERE run = '$RUN' AND tag = 'train' GROUP BY step
), b AS (SELECT step, r, (row_number() OVER (ORDER BY step) - 1) // 10 AS block FROM s)
SELECT min(step) AS first_step, max(step) AS last_step, round(avg(r), 3) AS mean_reward
FROM b GROUP BY block ORDER BY first_step"

echo
echo "wall time: ${wall} s (seed $SEED, $STEPS GRPO steps, lake $LAKE)"
