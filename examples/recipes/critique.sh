#!/bin/sh
# examples/recipes/critique.sh — critique/refine GRPO (critique.sql) against
# plain GRPO (baseline.sql) at equal rollouts, from the same SFT checkpoint,
# for several seeds; held-out pass@1 of a first attempt (eval.sql) and after
# the verdict as feedback (critique_eval.sql).
#
# Per seed: one SFT run (examples/arith/prepare.sql + sft.sql with their
# defaults), evaluated; then two runs forked from it (fork.sql), baseline and
# critique, each trained until it has sampled BUDGET policy turns (a
# baseline rollout is one turn; a critique episode is one or two: its rows
# of the turns table), then evaluated with eval.sql and critique_eval.sql.
# A run stops at the step that brings it nearest to BUDGET (critique's turns per step vary
# with its accuracy, so it may end up to half a step over or under: the
# table gives what was spent). Each run has its own lake, as in compare.sh.
#
# Environment: BIN (default bin/rljob), OUT (default
# examples/recipes/out-critique; deleted first), SEEDS (default "1 2 3"),
# BUDGET (policy turns per run, default 4096 = 16 baseline steps of 256),
# PROMPTS (prompts per step, default 32), SFT_EPOCHS (default: sft.sql's 40).
# Writes OUT/results.csv (one row per run) and OUT/results.md (per seed and
# the mean difference critique - baseline).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/rljob}
OUT=${OUT:-examples/recipes/out-critique}
SEEDS=${SEEDS:-1 2 3}
BUDGET=${BUDGET:-4096}
PROMPTS=${PROMPTS:-32}
SFT_EPOCHS=${SFT_EPOCHS:-40}
LAKES=$OUT/lakes
LOG=$OUT/critique.log

if [ ! -x "$BIN" ]; then
	echo "critique: $BIN not found; build it first (make build)" >&2
	exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
: > "$LOG"
start=$(date +%s)

# run JOB RUN SEED STEPS [--set k=v ...]: one rljob run in the run's lake, logged.
run() {
	j=$1 r=$2 s=$3 n=$4
	shift 4
	if ! "$BIN" run "$j" --lake "$LAKES/$r" --run "$r" --seed "$s" --steps "$n" --log-format json "$@" >> "$LOG" 2>&1; then
		echo "critique: $j (run $r) failed; the last lines of $LOG:" >&2
		tail -n 5 "$LOG" >&2
		exit 1
	fi
}

# q RUN QUERY: one value from the run's lake.
q() { "$BIN" sql --lake "$LAKES/$1" --format csv "$2" | tail -n +2; }

# spent RUN: sampled policy turns of the run's train rollouts: rows of
# turns for a critique run (a lake without episodes has no turns table and
# no num_turns column), rows of rollouts otherwise.
spent() {
	v=$(q "$1" "SELECT count(*) FROM rollouts WHERE run = '$1' AND tag = 'train'")
	case $1 in
	critique-*) [ "$v" = 0 ] || v=$(q "$1" "SELECT count(*) FROM turns WHERE run = '$1' AND tag = 'train'") ;;
	esac
	[ -n "$v" ] || { echo "critique: cannot count the turns of run $1" >&2; exit 1; }
	echo "$v"
}

# metric RUN NAME: the newest value of a metric.
metric() { q "$1" "SELECT value FROM metrics WHERE run = '$1' AND name = '$2' ORDER BY step DESC LIMIT 1"; }

# train_until JOB RUN SEED TARGET: one step at a time until one more step
# (at the run's mean turns per step) would end further from TARGET than now.
train_until() {
	tj=$1 tr=$2 ts=$3 tt=$4
	while :; do
		have=$(spent "$tr") || exit 1
		steps=$(q "$tr" "SELECT count(DISTINCT step) FROM rollouts WHERE run = '$tr' AND tag = 'train'")
		if [ "$steps" -gt 0 ]; then
			per=$(( have / steps ))
			[ $(( 2 * (tt - have) )) -lt "$per" ] && return 0
		fi
		run "$tj" "$tr" "$ts" 1 --set "prompts_per_step=$PROMPTS"
	done
}

# evaluate RUN SEED: eval.sql and critique_eval.sql, one step each.
evaluate() {
	run examples/arith/eval.sql "$1" "$2" 1
	run examples/recipes/critique_eval.sql "$1" "$2" 1
}

echo "recipe,seed,turns,steps,pass1,feedback1,first1" > "$OUT/results.csv"
row() { # row RECIPE SEED RUN
	st=$(q "$3" "SELECT count(DISTINCT step) FROM rollouts WHERE run = '$3' AND tag = 'train'")
	echo "$1,$2,$(spent "$3"),$st,$(metric "$3" val/arith/pass@1),$(metric "$3" val/critique/feedback@1),$(metric "$3" val/critique/first@1)" >> "$OUT/results.csv"
}

for seed in $SEEDS; do
	t0=$(date +%s)
	sr="sft-s$seed"
	run examples/arith/prepare.sql "$sr" "$seed" 1
	run examples/arith/sft.sql "$sr" "$seed" 1 --set "sft_epochs=$SFT_EPOCHS"
	evaluate "$sr" "$seed"
	row sft "$seed" "$sr"
	echo "seed $seed: SFT and its evals in $(( $(date +%s) - t0 )) s"
	for rec in baseline critique; do
		t0=$(date +%s)
		r="$rec-s$seed"
		for t in prompts checkpoints steps calls; do
			mkdir -p "$LAKES/$r/$t"
			cp -r "$LAKES/$sr/$t/run=$sr" "$LAKES/$r/$t/"
		done
		run examples/recipes/fork.sql "$r" "$seed" 1 --set "from=$sr"
		train_until "examples/recipes/$rec.sql" "$r" "$seed" "$BUDGET"
		evaluate "$r" "$seed"
		row "$rec" "$seed" "$r"
		echo "seed $seed: $rec: $(spent "$r") policy turns, $(( $(date +%s) - t0 )) s"
	done
done
wall=$(( $(date +%s) - start ))

# The table: per seed, and the mean and sample std of critique - baseline.
CSV="read_csv('$OUT/results.csv', header := true, auto_detect := true)"
{
echo "# critique vs baseline: results"
echo
echo "Run: \`$BIN\` ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "SEEDS=\"$SEEDS\" BUDGET=$BUDGET PROMPTS=$PROMPTS SFT_EPOCHS=$SFT_EPOCHS; wall time ${wall} s."
echo
"$BIN" sql --lake "$LAKES/sft-s$(echo "$SEEDS" | cut -d' ' -f1)" "
SELECT recipe, seed, turns, steps, printf('%.3f', pass1) AS \"pass@1 (first attempt)\",
       printf('%.3f', feedback1) AS \"pass@1 after feedback\"
FROM $CSV ORDER BY seed, recipe <> 'sft', recipe" | sed -e '/^([0-9]* rows*)$/d' -e 's/^/| /' -e 's/$/ |/' -e '2s/+/|/g' -e '2s/[^|]/-/g'
echo
"$BIN" sql --lake "$LAKES/sft-s$(echo "$SEEDS" | cut -d' ' -f1)" "
WITH d AS (
  SELECT c.seed, c.pass1 - b.pass1 AS d1, c.feedback1 - b.feedback1 AS df
  FROM $CSV AS c JOIN $CSV AS b USING (seed) WHERE c.recipe = 'critique' AND b.recipe = 'baseline')
SELECT 'critique - baseline (points)' AS what,
       string_agg(printf('%+.1f', 100 * d1), ' ' ORDER BY seed) AS \"pass@1 by seed\",
       printf('%+.1f', 100 * avg(d1)) AS \"mean\", printf('%.1f', 100 * stddev_samp(d1)) AS \"sd\",
       string_agg(printf('%+.1f', 100 * df), ' ' ORDER BY seed) AS \"after feedback by seed\",
       printf('%+.1f', 100 * avg(df)) AS \"mean \", printf('%.1f', 100 * stddev_samp(df)) AS \"sd \"
FROM d" | sed -e '/^([0-9]* rows*)$/d' -e 's/^/| /' -e 's/$/ |/' -e '2s/+/|/g' -e '2s/[^|]/-/g'
} > "$OUT/results.md"
cat "$OUT/results.md"
