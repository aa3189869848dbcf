#!/bin/sh
# examples/recipes/compare.sh — baseline GRPO and every recipe on the arith
# task with the same budget of sampled train rollouts, for several seeds,
# then held-out pass@1 / pass@16 against rollouts spent (make compare).
#
# Per seed: one SFT run (examples/arith/prepare.sql + sft.sql, then
# eval.sql) shared by every recipe: each recipe run starts with fork.sql
# (init_policy(policy := 'run=sft-sN') and a copy of its prompts), then
# trains until it has sampled BUDGET/EVALS, 2·BUDGET/EVALS, ... BUDGET train
# rollouts, with eval.sql (363 test prompts × 16 samples at T = 1, plus
# greedy) after each slice. A recipe that samples a variable number of
# rollouts per step (dapo.sql) runs as many steps as its history says fit,
# one more when short, so it may overshoot a slice by less than a step; the
# table reports what was actually spent.
#
# Each run has a lake of its own (OUT/lakes/RUN, starting from a copy of
# the seed's SFT run folders): a job's statements read the lake views, which
# list and scan every run's files, so in one shared lake every step got
# slower as the comparison went on (2 steps of nsr.sql: 0.8 s in a lake with
# the SFT run only, 11 s after 8 recipe runs). At the end the runs' metrics,
# rollouts and rewards folders are copied into OUT/lake for the report.
#
# Charts (CHARTS=1, the default): OUT/charts/01-pass1_vs_rollouts.png and
# 02-pass16_vs_rollouts.png, held-out pass@1 / pass@16 against train
# rollouts spent, one line per recipe (mean over seeds; every line starts at
# the SFT checkpoints' mean at 0 rollouts), drawn by examples/recipes/chart
# from OUT/curves.csv with the report package's plotting code; and
# OUT/report/, rljob report --format png of the first seed's runs of
# CHART_RECIPES (training curves against step).
#
# Environment: BIN (default bin/rljob), OUT (default examples/recipes/out;
# deleted first: lake, logs, results.md, curves.csv, charts, report), SEEDS
# (default "1 2 3"), BUDGET (sampled train rollouts per run, default 8192 =
# 32 steps of 256), EVALS (evaluations per run, default 4), RECIPES
# (default: all below), CHARTS (default 1), CHART_BIN (the chart program;
# default: go run ./examples/recipes/chart), CHART_RECIPES (default
# "baseline curriculum dapo nsr oneshot").
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/rljob}
OUT=${OUT:-examples/recipes/out}
SEEDS=${SEEDS:-1 2 3}
BUDGET=${BUDGET:-8192}
EVALS=${EVALS:-4}
RECIPES=${RECIPES:-baseline curriculum curriculum_hints dapo replay nsr wreinforce passk oneshot relift lowlik}
CHARTS=${CHARTS:-1}
CHART_RECIPES=${CHART_RECIPES:-baseline curriculum dapo nsr oneshot}
LAKES=$OUT/lakes
LAKE=$OUT/lake
LOG=$OUT/compare.log

if [ ! -x "$BIN" ]; then
	echo "compare: $BIN not found; build it first (make build)" >&2
	exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
: > "$LOG"
start=$(date +%s)

# job RECIPE: the job file of a recipe (relift lives in examples/arith;
# curriculum_hints is curriculum.sql with --set hints=1).
job() {
	case $1 in
	relift) echo examples/arith/relift.sql ;;
	curriculum_hints) echo examples/recipes/curriculum.sql ;;
	*) echo "examples/recipes/$1.sql" ;;
	esac
}

# sets RECIPE: the recipe's --set arguments (a variant of a job file).
sets() {
	case $1 in
	curriculum_hints) echo "--set hints=1" ;;
	esac
}

# run JOB RUN SEED STEPS [--set k=v ...]: one rljob run in the run's lake, logged.
run() {
	j=$1 r=$2 s=$3 n=$4
	shift 4
	if ! "$BIN" run "$j" --lake "$LAKES/$r" --run "$r" --seed "$s" --steps "$n" --log-format json "$@" >> "$LOG" 2>&1; then
		echo "compare: $j (run $r) failed; the last lines of $LOG:" >&2
		tail -n 5 "$LOG" >&2
		exit 1
	fi
}

# q RUN QUERY: one value from the run's lake.
q() { "$BIN" sql --lake "$LAKES/$1" --format csv "$2" | tail -n +2; }

# md QUERY: the query's rows as a Markdown table (from rljob sql's table format).
md() {
	"$BIN" sql --lake "$LAKE" "$1" | sed -e '/^([0-9]* rows*)$/d' -e 's/^/| /' -e 's/$/ |/' -e '2s/+/|/g' -e '2s/[^|]/-/g'
}

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

for seed in $SEEDS; do
	t0=$(date +%s)
	run examples/arith/prepare.sql "sft-s$seed" "$seed" 1
	run examples/arith/sft.sql "sft-s$seed" "$seed" 1
	run examples/arith/eval.sql "sft-s$seed" "$seed" 1
	echo "seed $seed: SFT and its eval in $(( $(date +%s) - t0 )) s"
	for rec in $RECIPES; do
		t0=$(date +%s)
		r="$rec-s$seed"
		for t in prompts checkpoints steps calls; do
			mkdir -p "$LAKES/$r/$t"
			cp -r "$LAKES/sft-s$seed/$t/run=sft-s$seed" "$LAKES/$r/$t/"
		done
		run examples/recipes/fork.sql "$r" "$seed" 1 --set "from=sft-s$seed"
		i=1
		while [ "$i" -le "$EVALS" ]; do
			# shellcheck disable=SC2046 # sets: word-split on purpose
			train_until "$(job "$rec")" "$r" "$seed" $(( BUDGET * i / EVALS )) $(sets "$rec")
			run examples/arith/eval.sql "$r" "$seed" 1
			i=$(( i + 1 ))
		done
		echo "seed $seed: $rec: $(spent "$r") rollouts, $(( $(date +%s) - t0 )) s"
	done
done
wall=$(( $(date +%s) - start ))

# One lake for the report: every run's own metrics, rollouts and rewards.
for l in "$LAKES"/*; do
	r=$(basename "$l")
	for t in metrics rollouts rewards; do
		mkdir -p "$LAKE/$t"
		cp -r "$l/$t/run=$r" "$LAKE/$t/"
	done
done

# The evaluations: per run and eval step, pass@1/16 and greedy accuracy, the
# train rollouts sampled before it; recipe and seed from the run name.
EVALQ="WITH m AS (
  SELECT run, step,
         max(value) FILTER (name = 'val/arith/pass@1') AS p1,
         max(value) FILTER (name = 'val/arith/pass@16') AS p16,
         max(value) FILTER (name = 'val/arith/greedy_acc') AS greedy
  FROM metrics WHERE name LIKE 'val/arith/%' GROUP BY run, step
), t AS (SELECT run, step FROM rollouts WHERE tag = 'train')
SELECT regexp_extract(m.run, '^(.*)-s[0-9]+\$', 1) AS recipe,
       CAST(regexp_extract(m.run, '-s([0-9]+)\$', 1) AS INTEGER) AS seed,
       m.run, m.step, p1, p16, greedy,
       (SELECT count(*) FROM t WHERE t.run = m.run AND t.step < m.step) AS rollouts,
       row_number() OVER (PARTITION BY m.run ORDER BY m.step) AS eval_no
FROM m"

{
echo "# make compare: results"
echo
echo "Run: \`$BIN\` ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "SEEDS=\"$SEEDS\" BUDGET=$BUDGET EVALS=$EVALS; wall time ${wall} s."
echo
echo "## Held-out pass@1 and pass@16 at the full budget (mean over seeds; per seed in brackets)"
echo
md "WITH e AS ($EVALQ),
last AS (SELECT * FROM e WHERE recipe = 'sft' OR eval_no = $EVALS),
sft AS (SELECT seed, p1 AS s1, p16 AS s16 FROM e WHERE recipe = 'sft')
SELECT recipe,
       round(avg(rollouts)) AS rollouts,
       printf('%.3f', avg(p1)) AS \"pass@1\",
       '[' || string_agg(printf('%.3f', p1), ' ' ORDER BY last.seed) || ']' AS \"pass@1 by seed\",
       printf('%+.1f', 100 * avg(p1 - s1)) AS \"Δ pass@1 vs SFT (pts)\",
       printf('%.3f', avg(p16)) AS \"pass@16\",
       '[' || string_agg(printf('%.3f', p16), ' ' ORDER BY last.seed) || ']' AS \"pass@16 by seed\",
       printf('%+.1f', 100 * avg(p16 - s16)) AS \"Δ pass@16 vs SFT (pts)\",
       printf('%.3f', avg(greedy)) AS greedy
FROM last JOIN sft USING (seed)
GROUP BY recipe
ORDER BY recipe <> 'sft', recipe <> 'baseline', recipe"
echo
echo "## pass@1 / pass@16 against rollouts spent (mean over seeds)"
echo
md "WITH e AS ($EVALQ)
SELECT recipe, eval_no AS eval, round(avg(rollouts)) AS rollouts,
       printf('%.3f', avg(p1)) AS \"pass@1\", printf('%.3f', avg(p16)) AS \"pass@16\"
FROM e WHERE recipe <> 'sft'
GROUP BY recipe, eval_no
ORDER BY recipe <> 'baseline', recipe, eval_no"
echo
echo "## The bucket RL alone never solves (finding 6)"
echo
echo "Per seed, the test prompts with 0 of 16 correct both after SFT and after baseline GRPO at the full budget; the mean share of their 16 samples each run's final checkpoint gets right (baseline is 0 by construction; the other recipes did not choose the bucket, so they are the fair comparison for relift)."
echo
md "WITH e AS ($EVALQ),
g AS (SELECT run, step, prompt_id, count(*) AS n, count_if(correct) AS c
      FROM scored WHERE tag = 'eval' AND temperature > 0 GROUP BY ALL),
last AS (SELECT * FROM e WHERE recipe = 'sft' OR eval_no = $EVALS),
lg AS (SELECT last.recipe, last.seed, g.prompt_id, g.n, g.c FROM last JOIN g USING (run, step)),
bucket AS (SELECT a.seed, a.prompt_id FROM lg AS a JOIN lg AS b USING (seed, prompt_id)
           WHERE a.recipe = 'sft' AND b.recipe = 'baseline' AND a.c = 0 AND b.c = 0)
SELECT lg.recipe, count(*) // count(DISTINCT lg.seed) AS \"bucket prompts per seed\",
       printf('%.3f', avg(lg.c / lg.n)) AS \"mean accuracy on the bucket\",
       count_if(lg.c > 0) AS \"bucket prompts solved at least once (all seeds)\"
FROM lg JOIN bucket USING (seed, prompt_id)
WHERE lg.recipe NOT IN ('sft')
GROUP BY lg.recipe ORDER BY lg.recipe <> 'baseline', lg.recipe"
} > "$OUT/results.md"

if [ "$CHARTS" = 1 ]; then
	# The curves: per recipe and evaluation the mean over seeds, plus the SFT
	# checkpoints' mean as every recipe's point at 0 rollouts.
	"$BIN" sql --lake "$LAKE" --format csv "WITH e AS ($EVALQ),
sft AS (SELECT avg(p1) AS p1, avg(p16) AS p16 FROM e WHERE recipe = 'sft'),
r AS (SELECT recipe, eval_no, avg(rollouts) AS rollouts, avg(p1) AS pass1, avg(p16) AS pass16
      FROM e WHERE recipe <> 'sft' GROUP BY recipe, eval_no)
SELECT recipe, rollouts, pass1, pass16 FROM (
  SELECT recipe, rollouts, pass1, pass16 FROM r
  UNION ALL
  SELECT DISTINCT r.recipe, 0, sft.p1, sft.p16 FROM r, sft)
ORDER BY recipe <> 'baseline', recipe, rollouts" > "$OUT/curves.csv"
	if [ -n "${CHART_BIN:-}" ]; then
		"$CHART_BIN" -i "$OUT/curves.csv" -o "$OUT/charts" >> "$LOG" 2>&1 || echo "compare: the charts failed (see $LOG)" >&2
	else
		go run -tags duckdb_arrow ./examples/recipes/chart -i "$OUT/curves.csv" -o "$OUT/charts" >> "$LOG" 2>&1 || echo "compare: the charts failed (see $LOG)" >&2
	fi
	first=$(echo "$SEEDS" | cut -d' ' -f1)
	set --
	for rec in $CHART_RECIPES; do
		[ -d "$LAKES/$rec-s$first" ] && set -- "$@" --run "$rec-s$first"
	done
	"$BIN" report --lake "$LAKE" --format png -o "$OUT/report" "$@" >> "$LOG" 2>&1 || echo "compare: rljob report failed (see $LOG)" >&2
fi
cat "$OUT/results.md"
