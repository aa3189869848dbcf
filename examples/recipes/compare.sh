#!/bin/sh
# examples/recipes/compare.sh — the arms of the findings (examples/recipes/
# findings.csv) on the arith task, ≥ 8 seeds, per-seed results in
# OUT/perseed.csv, verdicts by the rule of examples/recipes/README.md
# ("## Findings") in OUT/findings.md (make compare).
#
# Per seed: the start runs, then every arm forked from its start.
#   sft-sN     examples/arith/prepare.sql + sft.sql, then eval.sql (and
#              passk_eval.sql when sft is in LARGEK): the start of most arms
#   sftfmt-sN  prepare.sql + examples/recipes/sft_format.sql + eval.sql: the
#              start of oneshot_fmt (knows the sums, not the format); run
#              only when an arm that needs it is run
# Each arm run starts with fork.sql (init_policy(policy := 'run=START') and a
# copy of its prompts) and trains in EVALS slices, with eval.sql (363 test
# prompts × 16 samples at T = 1, plus greedy) after each slice. Its budget
# mode says how long a slice is:
#   R  sampled train rollouts: train until the run has sampled i·BUDGET/EVALS
#      train rollouts (an arm whose rollouts per step vary runs as many steps
#      as its history says fit, one more when short, so it may overshoot a
#      slice by less than a step; perseed.csv has what was actually spent)
#   U  updates: exactly BUDGET/256/EVALS steps per slice (the baseline's
#      number of steps, one optimizer update per step), whatever it samples
# After the last slice, an arm in LARGEK also runs passk_eval.sql (100 fixed
# held-out prompts × 512 samples: pass@1..256, coverage@512).
#
# An arm whose job file is not in this checkout is skipped with one line.
# The tool-use arms (tools_sft, tools_grpo, notool_sft, notool_grpo) come
# from examples/tools/seeds.sh (TOOLS=1 and the script present), run beside
# the seeds with OUT=OUT/tools; its rows are appended to OUT/perseed.csv.
#
# Each run has a lake of its own (OUT/lakes/RUN, starting from a copy of the
# start run's folders): a job's statements read the lake views, which list
# and scan every run's files, so in one shared lake every step got slower as
# the comparison went on (2 steps of nsr.sql: 0.8 s in a lake with the SFT
# run only, 11 s after 8 recipe runs). At the end the runs' metrics,
# rollouts and rewards folders are copied into OUT/lake for queries and the
# report.
#
# Outputs (OUT is deleted first):
#   perseed.csv  arm,seed,metric,value: pass@1, pass@16, greedy (the last
#                eval.sql), rollouts (sampled train rollouts), updates
#                (optimizer updates: per train call epochs × minibatches,
#                per sft call epochs × batches), and for LARGEK arms pass@K
#                (K = 1, 2, 4, ..., 256, named pass@K@512 to keep them
#                apart from eval.sql's pass@1 and pass@16) and coverage@512;
#                the starts as arms sft and sftfmt (rollouts 0, updates 0)
#   curves.csv   arm,seed,eval,rollouts,pass1,pass16: every evaluation, the
#                start's as eval 0 at 0 rollouts
#   findings.md  the verdict program's tables (examples/recipes/verdict)
#   charts/      examples/recipes/chart's PNGs (CHARTS=1)
#   compare.log  every rljob run's log; timings.csv arm,seed,seconds (wall);
#                seeds/sN/ the same per seed, as the seeds ran
#
# Environment: BIN (default bin/rljob), OUT (default examples/recipes/out),
# SEEDS (default "1 2 3 4 5 6 7 8"), BUDGET (per arm: sampled train
# rollouts in mode R, BUDGET/256 steps in mode U; default 4096 = 16
# baseline steps), EVALS (default 2), ARMS (default: the arms of
# findings.csv, below), LARGEK (arms that get passk_eval.sql, default
# "sft sftfmt" and every arm of ARMS), PASSK_N (samples per prompt,
# default 512), TOOLS (default 1), JOBS (seeds run at a time, default 2:
# the seeds are independent, and one rljob process leaves part of 2 cores
# idle), CHARTS (default 1), PASSK_CHART (the arms of the pass@k chart,
# default "sft baseline psr nsr wreinforce passk": the large-k findings'
# arms; every LARGEK arm is in perseed.csv), VERDICT_BIN and CHART_BIN (the programs;
# default go run).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/rljob}
OUT=${OUT:-examples/recipes/out}
SEEDS=${SEEDS:-1 2 3 4 5 6 7 8}
BUDGET=${BUDGET:-4096}
EVALS=${EVALS:-2}
ARMS=${ARMS:-baseline sft_equal rft psr nsr wreinforce passk curriculum dapo_eq_updates dapo_eq_rollouts oneshot_fmt relift_fixed relift_random}
LARGEK=${LARGEK:-sft sftfmt $ARMS}
PASSK_N=${PASSK_N:-512}
TOOLS=${TOOLS:-1}
JOBS=${JOBS:-2}
CHARTS=${CHARTS:-1}
PASSK_CHART=${PASSK_CHART:-sft baseline psr nsr wreinforce passk}
LAKES=$OUT/lakes
LAKE=$OUT/lake
LOG=$OUT/compare.log
CSV=$OUT/perseed.csv
CURVES=$OUT/curves.csv

if [ ! -x "$BIN" ]; then
	echo "compare: $BIN not found; build it first (make build)" >&2
	exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
: > "$LOG"
echo "arm,seed,metric,value" > "$CSV"
echo "arm,seed,eval,rollouts,pass1,pass16" > "$CURVES"
echo "arm,seed,seconds" > "$OUT/timings.csv"
start=$(date +%s)

# spec ARM: "JOB START MODE [--set k=v ...]" of an arm (empty: unknown arm).
spec() {
	case $1 in
	baseline | rft | psr | nsr | wreinforce | passk | curriculum | relift_fixed | relift_random | replay | lowlik | dapo | oneshot)
		echo "examples/recipes/$1.sql sft R" ;;
	sft_equal) echo "examples/recipes/sft_equal.sql sft U" ;;
	curriculum_hints) echo "examples/recipes/curriculum.sql sft R --set hints=1" ;;
	dapo_eq_updates) echo "examples/recipes/dapo.sql sft U --set updates_per_step=1" ;;
	dapo_eq_rollouts) echo "examples/recipes/dapo.sql sft R --set updates_per_step=1" ;;
	oneshot_fmt) echo "examples/recipes/oneshot_fmt.sql sftfmt R" ;;
	relift) echo "examples/arith/relift.sql sft R" ;;
	esac
}

# The arms that can run here: a known arm whose job file exists.
active=
need_fmt=0
for a in $ARMS; do
	set -- $(spec "$a")
	if [ $# -eq 0 ]; then
		echo "compare: unknown arm $a (see spec() in $0)" >&2
		exit 2
	fi
	if [ ! -f "$1" ]; then
		echo "compare: arm $a skipped: its job file $1 is not in this checkout"
		continue
	fi
	if [ "$2" = sftfmt ] && [ ! -f examples/recipes/sft_format.sql ]; then
		echo "compare: arm $a skipped: its start needs examples/recipes/sft_format.sql, not in this checkout"
		continue
	fi
	sj=$1 sst=$2
	shift 3
	# --dry-run: the job file parses and reads the arm's --set variables
	if ! msg=$("$BIN" run "$sj" "$@" --dry-run --lake "$OUT/dry-run" --run check 2>&1 >/dev/null); then
		echo "compare: arm $a skipped: $(echo "$msg" | grep -m1 '^rljob:' | sed 's/^rljob: //')"
		continue
	fi
	[ "$sst" = sftfmt ] && need_fmt=1
	active="$active $a"
done

# run JOB RUN SEED STEPS [--set k=v ...]: one rljob run in the run's lake, logged.
# (POSIX sh has no local variables: every function's names are its own.)
run() {
	rj=$1 rr_=$2 rs_=$3 rn=$4
	shift 4
	if ! "$BIN" run "$rj" --lake "$LAKES/$rr_" --run "$rr_" --seed "$rs_" --steps "$rn" --log-format json "$@" >> "$SLOG" 2>&1; then
		echo "compare: $rj (run $rr_) failed; the last lines of $SLOG:" >&2
		tail -n 5 "$SLOG" >&2
		exit 1
	fi
}

# q RUN QUERY: the query's rows (CSV, no header) over the run's lake.
q() { "$BIN" sql --lake "$LAKES/$1" --format csv "$2" | tail -n +2; }

# spent RUN: sampled train rollouts of the run so far.
spent() { q "$1" "SELECT count(*) FROM rollouts WHERE run = '$1' AND tag = 'train'"; }

# train_until JOB RUN SEED TARGET [--set k=v ...]: train steps until RUN has
# sampled TARGET train rollouts; the first invocation runs one step, each
# later one as many steps as the run's mean rollouts per step says still fit
# (at least one).
train_until() {
	tj=$1 tr=$2 ts=$3 tt=$4
	shift 4
	while :; do
		have=$(spent "$tr")
		[ "$have" -ge "$tt" ] && return 0
		if [ "$have" -eq 0 ]; then
			steps=1
		else
			per=$(q "$tr" "SELECT CAST(round(count(*) / count(DISTINCT step)) AS BIGINT) FROM rollouts WHERE run = '$tr' AND tag = 'train'")
			steps=$(( (tt - have) / per ))
			[ "$steps" -lt 1 ] && steps=1
		fi
		run "$tj" "$tr" "$ts" "$steps" "$@"
	done
}

# record ARM SEED RUN: the run's rows of perseed.csv and curves.csv.
record() {
	ra=$1 rs=$2 rr=$3
	q "$rr" "WITH e AS (
  SELECT step, max(value) FILTER (name = 'val/arith/pass@1') AS p1,
         max(value) FILTER (name = 'val/arith/pass@16') AS p16,
         max(value) FILTER (name = 'val/arith/greedy_acc') AS greedy
  FROM metrics WHERE run = '$rr' AND name LIKE 'val/arith/%' GROUP BY step),
last AS (SELECT * FROM e ORDER BY step DESC LIMIT 1),
c AS (SELECT c.step, c.stage, coalesce(CAST(json_extract(c.args, '\$.epochs') AS BIGINT), 1) AS ep,
             coalesce(CAST(json_extract(c.args, '\$.minibatch_size') AS BIGINT), 0) AS mb,
             coalesce(CAST(json_extract(c.args, '\$.batch_size') AS BIGINT), 0) AS bs
      FROM calls AS c WHERE c.run = '$rr' AND c.status = 'done' AND c.stage IN ('train', 'sft') AND c.shard = 0
        AND '$ra' NOT IN ('sft', 'sftfmt')),
seqs AS (SELECT step, max(value) FILTER (name = 'train/sequences') AS tr, max(value) FILTER (name = 'sft/sequences') AS sf
         FROM metrics WHERE run = '$rr' GROUP BY step),
u AS (SELECT coalesce(sum(ep * CASE WHEN c.stage = 'train' THEN (CASE WHEN mb <= 0 THEN 1 ELSE ceil(tr / mb) END)
                                    ELSE (CASE WHEN bs <= 0 THEN 1 ELSE ceil(sf / bs) END) END), 0) AS n
      FROM c LEFT JOIN seqs USING (step))
SELECT '$ra', $rs, 'pass@1', p1 FROM last
UNION ALL SELECT '$ra', $rs, 'pass@16', p16 FROM last
UNION ALL SELECT '$ra', $rs, 'greedy', greedy FROM last
UNION ALL SELECT '$ra', $rs, 'rollouts', count(*) FROM rollouts WHERE run = '$rr' AND tag = 'train'
UNION ALL SELECT '$ra', $rs, 'updates', n FROM u" >> "$SCSV"
	q "$rr" "WITH e AS (
  SELECT step, max(value) FILTER (name = 'val/arith/pass@1') AS p1, max(value) FILTER (name = 'val/arith/pass@16') AS p16
  FROM metrics WHERE run = '$rr' AND name LIKE 'val/arith/%' GROUP BY step)
SELECT '$ra', $rs, row_number() OVER (ORDER BY step) - CASE WHEN '$ra' IN ('sft', 'sftfmt') THEN 1 ELSE 0 END,
       (SELECT count(*) FROM rollouts AS t WHERE t.run = '$rr' AND t.tag = 'train' AND t.step < e.step), p1, p16
FROM e ORDER BY step" >> "$SCURVES"
}

# largek ARM SEED RUN: passk_eval.sql on the run's latest checkpoint, its rows.
largek() {
	case " $LARGEK " in *" $1 "*) ;; *) return 0 ;; esac
	run examples/recipes/passk_eval.sql "$3" "$2" 1 --set "passk_n=$PASSK_N"
	q "$3" "SELECT '$1', $2, CASE WHEN name LIKE 'val/arith_k/pass@%' THEN replace(name, 'val/arith_k/', '') || '@' || '$PASSK_N'
                            ELSE replace(name, 'val/arith_k/', '') END, value
FROM metrics WHERE run = '$3' AND regexp_full_match(name, 'val/arith_k/(pass|coverage)@[0-9]+')
  AND step = (SELECT max(step) FROM metrics WHERE run = '$3' AND name = 'val/arith_k/n') ORDER BY name" >> "$SCSV"
}

# start NAME SEED SFTJOB: a start run (prepare, its SFT, eval), recorded as arm NAME.
start_run() {
	st0=$(date +%s)
	run examples/arith/prepare.sql "$1-s$2" "$2" 1
	run "$3" "$1-s$2" "$2" 1
	run examples/arith/eval.sql "$1-s$2" "$2" 1
	record "$1" "$2" "$1-s$2"
	largek "$1" "$2" "$1-s$2"
	echo "$1,$2,$(( $(date +%s) - st0 ))" >> "$STIMES"
	echo "seed $2: start $1 in $(( $(date +%s) - st0 )) s"
}

# arm ARM SEED: the arm's run, forked from its start, trained and evaluated.
arm() {
	# shellcheck disable=SC2046 # spec: word-split on purpose
	set -- "$1" "$2" $(spec "$1")
	aa=$1 as=$2 aj=$3 ast=$4 amode=$5
	shift 5
	at0=$(date +%s)
	ar="$aa-s$as"
	for t in prompts checkpoints steps calls; do
		mkdir -p "$LAKES/$ar/$t"
		cp -r "$LAKES/$ast-s$as/$t/run=$ast-s$as" "$LAKES/$ar/$t/"
	done
	run examples/recipes/fork.sql "$ar" "$as" 1 --set "from=$ast-s$as"
	ai=1
	while [ "$ai" -le "$EVALS" ]; do
		if [ "$amode" = U ]; then
			run "$aj" "$ar" "$as" $(( BUDGET / 256 / EVALS )) "$@"
		else
			train_until "$aj" "$ar" "$as" $(( BUDGET * ai / EVALS )) "$@"
		fi
		run examples/arith/eval.sql "$ar" "$as" 1
		ai=$(( ai + 1 ))
	done
	record "$aa" "$as" "$ar"
	# the start's evaluation as the arm's eval 0, at 0 rollouts
	grep "^$ast,$as,0," "$SCURVES" | sed "s/^$ast,/$aa,/" >> "$SCURVES"
	largek "$aa" "$as" "$ar"
	echo "$aa,$as,$(( $(date +%s) - at0 ))" >> "$STIMES"
	echo "seed $as: $aa: $(spent "$ar") rollouts, $(( $(date +%s) - at0 )) s"
}

# one_seed SEED: the seed's start runs and arms, its rows in OUT/seeds/sSEED/.
one_seed() {
	SD=$OUT/seeds/s$1
	mkdir -p "$SD"
	SLOG=$SD/compare.log SCSV=$SD/perseed.csv SCURVES=$SD/curves.csv STIMES=$SD/timings.csv
	: > "$SLOG" && : > "$SCSV" && : > "$SCURVES" && : > "$STIMES"
	start_run sft "$1" examples/arith/sft.sql
	if [ "$need_fmt" = 1 ]; then start_run sftfmt "$1" examples/recipes/sft_format.sql; fi
	for a in $active; do
		arm "$a" "$1"
	done
}

# The tool-use arms, beside the seeds (own lakes, own perseed.csv under OUT/tools).
tools_pid=
if [ "$TOOLS" = 1 ] && [ -f examples/tools/seeds.sh ]; then
	mkdir -p "$OUT/tools"
	(
		t0=$(date +%s)
		BIN=$BIN OUT=$OUT/tools SEEDS=$SEEDS sh examples/tools/seeds.sh > "$OUT/tools/seeds.out" 2>&1
		echo $(( $(date +%s) - t0 )) > "$OUT/tools/seconds"
	) &
	tools_pid=$!
elif [ "$TOOLS" = 1 ]; then
	echo "compare: the tool-use arms (F14) skipped: examples/tools/seeds.sh is not in this checkout"
fi

# JOBS seeds at a time, each in a subshell (its own variables, files and lakes).
set -- $SEEDS
failed=0
while [ $# -gt 0 ]; do
	pids=
	j=0
	while [ $# -gt 0 ] && [ "$j" -lt "$JOBS" ]; do
		one_seed "$1" &
		pids="$pids $!"
		shift
		j=$(( j + 1 ))
	done
	for p in $pids; do wait "$p" || failed=1; done
	if [ "$failed" != 0 ]; then
		[ -z "$tools_pid" ] || kill "$tools_pid" 2>/dev/null || :
		echo "compare: a seed failed (see its compare.log under $OUT/seeds)" >&2
		exit 1
	fi
done
for seed in $SEEDS; do
	SD=$OUT/seeds/s$seed
	cat "$SD/perseed.csv" >> "$CSV"
	cat "$SD/curves.csv" >> "$CURVES"
	cat "$SD/timings.csv" >> "$OUT/timings.csv"
	cat "$SD/compare.log" >> "$LOG"
done
if [ -n "$tools_pid" ]; then
	if ! wait "$tools_pid"; then
		echo "compare: examples/tools/seeds.sh failed (see $OUT/tools/seeds.out and $OUT/tools/tools.log)" >&2
		exit 1
	fi
	tail -n +2 "$OUT/tools/perseed.csv" >> "$CSV"
	echo "tools,all,$(cat "$OUT/tools/seconds")" >> "$OUT/timings.csv"
	echo "tools: examples/tools/seeds.sh in $(cat "$OUT/tools/seconds") s"
fi
wall=$(( $(date +%s) - start ))

# One lake for queries and the report: every run's own metrics, rollouts and rewards.
for l in "$LAKES"/*; do
	r=$(basename "$l")
	for t in metrics rollouts rewards passk_counts; do
		[ -d "$l/$t/run=$r" ] || continue
		mkdir -p "$LAKE/$t"
		cp -r "$l/$t/run=$r" "$LAKE/$t/"
	done
done

{
	echo "Run: \`$BIN\` ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "SEEDS=\"$SEEDS\" BUDGET=$BUDGET EVALS=$EVALS ARMS=\"$(echo $active)\" LARGEK=\"$LARGEK\" PASSK_N=$PASSK_N; wall time ${wall} s."
} > "$OUT/run.txt"
if [ -n "${VERDICT_BIN:-}" ]; then
	"$VERDICT_BIN" -perseed "$CSV" -o "$OUT/findings.md"
else
	go run ./examples/recipes/verdict -perseed "$CSV" -o "$OUT/findings.md"
fi
if [ "$CHARTS" = 1 ]; then
	if [ -n "${CHART_BIN:-}" ]; then
		"$CHART_BIN" -perseed "$CSV" -curves "$CURVES" -o "$OUT/charts" -passk-arms "$PASSK_CHART" >> "$LOG" 2>&1 || echo "compare: the charts failed (see $LOG)" >&2
	else
		go run -tags duckdb_arrow ./examples/recipes/chart -perseed "$CSV" -curves "$CURVES" -o "$OUT/charts" -passk-arms "$PASSK_CHART" >> "$LOG" 2>&1 || echo "compare: the charts failed (see $LOG)" >&2
	fi
fi
cat "$OUT/run.txt"
echo
cat "$OUT/findings.md"
