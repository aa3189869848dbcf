#!/bin/sh
# examples/tools/seeds.sh — the tool-use finding (ToRL, arXiv:2503.23383:
# tool-integrated RL beats text-only RL) over several seeds, for the
# findings of examples/recipes (issue 22). Per seed, in a lake of its own
# (OUT/tools-lakes/sN):
#
#   run tool-sN:   prepare.sql → sft.sql (tool traces) → eval.sql
#                  → grpo.sql × STEPS (episodes with the calculator) → eval.sql
#   run notool-sN: prepare.sql → sft.sql --set tool=false → eval.sql --set tool=false
#                  → grpo.sql --set tool=false × STEPS (text only) → eval.sql --set tool=false
#
# Both arms get the same GRPO steps (16 problems × 8 samples each). Appends
# to OUT/perseed.csv (header arm,seed,metric,value when the file is new) one
# row per evaluation: arms tools_sft, tools_grpo, notool_sft, notool_grpo,
# metric pass@1 (eval.sql: EVAL_PROBLEMS test problems × 4 samples, T = 1).
#
# Environment: BIN (default bin/rljob), OUT (default examples/tools/out; not
# deleted: perseed.csv is appended to, OUT/tools-lakes is replaced), SEEDS
# (default "1 2 3 4 5 6 7 8"), STEPS (GRPO steps per arm, default 20),
# SFT_EPOCHS (default 16), EVAL_PROBLEMS (default 100).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/rljob}
OUT=${OUT:-examples/tools/out}
SEEDS=${SEEDS:-1 2 3 4 5 6 7 8}
STEPS=${STEPS:-20}
SFT_EPOCHS=${SFT_EPOCHS:-16}
EVAL_PROBLEMS=${EVAL_PROBLEMS:-100}
LAKES=$OUT/tools-lakes
LOG=$OUT/tools.log
CSV=$OUT/perseed.csv

if [ ! -x "$BIN" ]; then
	echo "seeds: $BIN not found; build it first (make build)" >&2
	exit 2
fi
mkdir -p "$OUT"
rm -rf "$LAKES"
[ -s "$CSV" ] || echo "arm,seed,metric,value" > "$CSV"
: > "$LOG"

# run JOB RUN SEED STEPS [--set k=v ...]: one rljob run in the seed's lake, logged.
run() {
	j=examples/tools/$1.sql r=$2 s=$3 n=$4
	shift 4
	if ! "$BIN" run "$j" --lake "$LAKES/s$s" --run "$r" --seed "$s" --steps "$n" --log-format json "$@" >> "$LOG" 2>&1; then
		echo "seeds: $j (run $r, seed $s) failed; the last lines of $LOG:" >&2
		tail -n 5 "$LOG" >&2
		exit 1
	fi
}

# row ARM RUN SEED: the run's newest val/tools/pass@1 as a perseed.csv row.
row() {
	v=$("$BIN" sql --lake "$LAKES/s$3" --format csv "SELECT value FROM metrics WHERE run = '$2' AND name = 'val/tools/pass@1' ORDER BY step DESC LIMIT 1" | tail -n 1)
	echo "$1,$3,pass@1,$v" >> "$CSV"
	echo "seed $3: $1 pass@1 $v"
}

start=$(date +%s)
for seed in $SEEDS; do
	t0=$(date +%s)
	for arm in tools notool; do
		r=$arm-s$seed
		tool=true
		[ "$arm" = notool ] && tool=false
		run prepare "$r" "$seed" 1
		run sft "$r" "$seed" 1 --set tool=$tool --set sft_epochs="$SFT_EPOCHS"
		run eval "$r" "$seed" 1 --set tool=$tool --set eval_problems="$EVAL_PROBLEMS"
		row "${arm}_sft" "$r" "$seed"
		run grpo "$r" "$seed" "$STEPS" --set tool=$tool
		run eval "$r" "$seed" 1 --set tool=$tool --set eval_problems="$EVAL_PROBLEMS"
		row "${arm}_grpo" "$r" "$seed"
	done
	echo "seed $seed: both arms in $(( $(date +%s) - t0 )) s"
done
echo "seeds: $(echo $SEEDS | wc -w) seeds, $STEPS GRPO steps per arm, in $(( $(date +%s) - start )) s; rows appended to $CSV"
