#!/bin/sh
# examples/tools/demo.sh — a calculator tool lifts pass@1 where the tiny
# model cannot compute in its head (4-digit × 2-digit multiplication):
#
#   run notool: prepare.sql → sft.sql (tool=false: problem → answer) → eval.sql (no tool)
#   run tool:   prepare.sql → sft.sql (traces with <call>/<result>) → eval.sql
#               → grpo.sql × STEPS (episodes with env := 'calculator') → eval.sql
#
# and ends by printing one line: pass@1 without tool: X with tool: Y (held-out
# test problems, 4 samples each at temperature 1, after SFT for the model
# without the tool, after SFT and GRPO for the one with it).
#
# Environment: BIN (default bin/rljob), LAKE (default examples/tools/lake;
# deleted first), SEED (default 1), STEPS (GRPO steps, default 30),
# SFT_EPOCHS (default 12), EVAL_PROBLEMS (default 100).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/rljob}
LAKE=${LAKE:-examples/tools/lake}
SEED=${SEED:-1}
STEPS=${STEPS:-30}
SFT_EPOCHS=${SFT_EPOCHS:-12}
EVAL_PROBLEMS=${EVAL_PROBLEMS:-100}
LOG=${LOG:-$LAKE.log}

if [ ! -x "$BIN" ]; then
	echo "demo: $BIN not found; build it first (make build)" >&2
	exit 2
fi
rm -rf "$LAKE"
mkdir -p "$(dirname "$LOG")"
: > "$LOG"
start=$(date +%s)

# run JOB RUN STEPS [--set k=v ...]: one rljob run, its log appended to $LOG.
run() {
	job=examples/tools/$1.sql run=$2 steps=$3
	shift 3
	t0=$(date +%s)
	echo "\$ rljob run $job --lake $LAKE --run $run --seed $SEED --steps $steps $*"
	if ! "$BIN" run "$job" --lake "$LAKE" --run "$run" --seed "$SEED" --steps "$steps" --log-format json "$@" >> "$LOG" 2>&1; then
		echo "demo: $job failed; the last lines of $LOG:" >&2
		tail -n 5 "$LOG" >&2
		exit 1
	fi
	echo "  done in $(( $(date +%s) - t0 )) s"
}

run prepare notool 1
run sft notool 1 --set tool=false --set sft_epochs="$SFT_EPOCHS"
run eval notool 1 --set tool=false --set eval_problems="$EVAL_PROBLEMS"
run prepare tool 1
run sft tool 1 --set tool=true --set sft_epochs="$SFT_EPOCHS"
run eval tool 1 --set tool=true --set eval_problems="$EVAL_PROBLEMS"
run grpo tool "$STEPS"
run eval tool 1 --set tool=true --set eval_problems="$EVAL_PROBLEMS"
wall=$(( $(date +%s) - start ))

sql() { "$BIN" sql --lake "$LAKE" "$@"; }

echo
echo "held-out pass@1 per evaluation (4 samples per test problem, temperature 1):"
sql "SELECT run, step, round(value, 3) AS \"pass@1\" FROM metrics WHERE name = 'val/tools/pass@1' ORDER BY run, step"
echo
echo "GRPO training reward and the on-policy check (first log-ratio, exactly 0 on episodes):"
sql "SELECT step, round(max(value) FILTER (name = 'train/reward_mean'), 3) AS reward_mean,
       max(value) FILTER (name = 'actor/first_max_abs_log_ratio') AS first_max_abs_log_ratio
FROM metrics WHERE run = 'tool' AND name IN ('train/reward_mean', 'actor/first_max_abs_log_ratio')
GROUP BY step ORDER BY step"
echo
echo "one held-out episode, turn by turn (rljob sql over turns):"
sql "SELECT turn, text, observation, status FROM turns
WHERE run = 'tool' AND rollout_id = (SELECT min(rollout_id) FROM turns WHERE run = 'tool' AND step = (SELECT max(step) FROM turns WHERE run = 'tool'))
  AND step = (SELECT max(step) FROM turns WHERE run = 'tool')
ORDER BY turn"
echo
echo "wall time: ${wall} s (seed $SEED, $STEPS GRPO steps, lake $LAKE)"
without=$(sql --format csv "SELECT round(value, 3) FROM metrics WHERE run = 'notool' AND name = 'val/tools/pass@1' ORDER BY step DESC LIMIT 1" | tail -n 1)
with=$(sql --format csv "SELECT round(value, 3) FROM metrics WHERE run = 'tool' AND name = 'val/tools/pass@1' ORDER BY step DESC LIMIT 1" | tail -n 1)
echo "pass@1 without tool: $without with tool: $with"
