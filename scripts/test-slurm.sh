#!/bin/sh
# scripts/test-slurm.sh — `make test-slurm`: rljob slurm on a real
# single-node Slurm (scripts/slurm-local.sh starts munged, slurmctld, slurmd
# on localhost and stops them by their PIDs at the end, also on failure).
#
#  1. The arith pipeline (prepare, sft, eval, 8 GRPO steps, eval), every file
#     a 2-task job array (2 shards), submitted with rljob slurm submit:
#     every job completes, and the lake's scored rows and metrics equal an
#     unsharded `rljob run` of the same files (metrics to 9 decimals: the
#     shards' part files sum in another order).
#  2. The same pipeline in a second lake; once GRPO is under way one array
#     task is killed (scancel JOB_1), then the shard left waiting for it
#     (scancel JOB); the eval job after it is cancelled by Slurm
#     (kill_invalid_depend). The same submit command again skips the
#     complete files, resumes GRPO and finishes: equal to the unsharded run.
#
# Fails (exit 1) if Slurm cannot be started; it never skips. Prints
# "N passed, N failed" at the end.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
W=$(mktemp -d /tmp/rljob-test-slurm.XXXXXX)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok:   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
die() { echo "test-slurm: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

cleanup() {
	sh "$root/scripts/slurm-local.sh" stop "$W/slurm" || echo "test-slurm: stopping slurm failed; daemons may be left (pid files in $W/slurm/run)" >&2
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

sh scripts/slurm-local.sh start "$W/slurm" || die "could not start Slurm (see $W/slurm/log)"
. "$W/slurm/env"

echo "building rljob"
go build -tags duckdb_arrow -o "$W/rljob" ./cmd/rljob || die "go build failed"
R=$W/rljob
A=examples/arith
GRPO_STEPS=8
PIPELINE="$A/prepare.sql:--array=0-1 $A/sft.sql:--array=0-1 $A/eval.sql:--array=0-1 $A/grpo.sql:--steps=$GRPO_STEPS:--array=0-1 $A/eval.sql:--array=0-1"
LAST=$((3 + GRPO_STEPS)) # prepare 0, sft 1, eval 2, grpo 3..LAST-1, eval LAST

submit() { # LAKE: submit the pipeline (stdout: rljob slurm's lines)
	# shellcheck disable=SC2086
	"$R" slurm submit $PIPELINE --lake "$1" --run arith --seed 1 --dir "$1.jobs" --rljob "$R" --sbatch=--time=30:00
}

wait_queue() { # SECONDS: until squeue is empty
	i=0
	while [ -n "$(squeue -h 2>/dev/null)" ]; do
		i=$((i + 1))
		if [ $i -gt $(($1 * 2)) ]; then
			squeue >&2
			return 1
		fi
		sleep 0.5
	done
}

last_step_dir() { # LAKE: highest step folder of the run's markers, -1 if none
	ls -d "$1/steps/run=arith/step="* 2>/dev/null | sed 's/.*step=//' | sort -n | tail -n 1 | grep . || echo -1
}

states() { # JOBID...: JobState of each job and array task, from jobcomp.txt
	for id in "$@"; do
		grep -E "JobId=$id( |_)" "$W/slurm/log/jobcomp.txt" | sed 's/.*JobId=\([0-9_]*\) .*JobState=\([A-Z]*\).*/\1 \2/'
	done
}

compare() { # LAKE WHAT: scored rows and metrics equal the unsharded reference
	Q="SELECT step, rollout_id, completion, reward FROM scored WHERE run = 'arith' ORDER BY step, rollout_id"
	M="SELECT step, name, round(value, 9) AS value FROM metrics WHERE run = 'arith' AND name NOT LIKE 'timing_s/%' AND name NOT LIKE 'perf/%' ORDER BY step, name"
	"$R" sql --lake "$1" --format csv "$Q" > "$1.scored.csv"
	"$R" sql --lake "$1" --format csv "$M" > "$1.metrics.csv"
	if cmp -s "$1.scored.csv" "$W/ref.scored.csv"; then ok "$2: scored rows equal the unsharded run ($(($(wc -l < "$1.scored.csv") - 1)) rows)"; else bad "$2: scored rows differ from the unsharded run (diff $1.scored.csv $W/ref.scored.csv)"; fi
	if cmp -s "$1.metrics.csv" "$W/ref.metrics.csv"; then ok "$2: metrics equal the unsharded run ($(($(wc -l < "$1.metrics.csv") - 1)) values)"; else bad "$2: metrics differ from the unsharded run (diff $1.metrics.csv $W/ref.metrics.csv)"; fi
}

echo "unsharded reference run"
for j in prepare:1 sft:1 eval:1 grpo:$GRPO_STEPS eval:1; do
	"$R" run "$A/${j%%:*}.sql" --lake "$W/ref" --run arith --seed 1 --steps "${j##*:}" --log-format json 2>> "$W/ref.log" ||
		die "reference run of ${j%%:*}.sql failed (see $W/ref.log)"
done
"$R" sql --lake "$W/ref" --format csv "SELECT step, rollout_id, completion, reward FROM scored WHERE run = 'arith' ORDER BY step, rollout_id" > "$W/ref.scored.csv"
"$R" sql --lake "$W/ref" --format csv "SELECT step, name, round(value, 9) AS value FROM metrics WHERE run = 'arith' AND name NOT LIKE 'timing_s/%' AND name NOT LIKE 'perf/%' ORDER BY step, name" > "$W/ref.metrics.csv"

# 1. The whole pipeline through Slurm.
echo "1. pipeline through rljob slurm submit"
t0=$(date +%s)
out=$(submit "$W/lake1") || die "rljob slurm submit failed: $out"
echo "$out"
ids=$(echo "$out" | sed -n 's/.*: job \([0-9]*\).*/\1/p')
[ "$(echo "$ids" | wc -l)" = 5 ] && ok "5 jobs submitted" || bad "submitted: $ids"
wait_queue 600 || die "pipeline 1 did not finish in 600 s"
echo "   finished in $(($(date +%s) - t0)) s"
st=$(states $ids)
n_done=$(echo "$st" | grep -c " COMPLETED" || true)
[ "$n_done" = 10 ] && ok "10 array tasks COMPLETED" || bad "job states: $st"
[ "$(last_step_dir "$W/lake1")" = "$LAST" ] && ok "run complete through step $LAST" || bad "last step $(last_step_dir "$W/lake1"), want $LAST"
deps=$("$R" sql --lake "$W/lake1" --format csv "SELECT count(*) FILTER (WHERE dependency LIKE 'afterok:%') AS d, count(*) AS n FROM slurm_jobs WHERE run = 'arith'")
[ "$deps" = "$(printf 'd,n\n4,5')" ] && ok "slurm_jobs records 5 jobs, 4 with afterok" || bad "slurm_jobs: $deps"
compare "$W/lake1" "pipeline 1"
again=$(submit "$W/lake1")
echo "$again" | grep -q "nothing to submit" && ok "a second submit finds nothing to do" || bad "second submit: $again"

# 2. Kill one array task of GRPO, then resubmit.
echo "2. scancel one GRPO array task, then resubmit"
out=$(submit "$W/lake2") || die "rljob slurm submit failed: $out"
echo "$out"
grpo=$(echo "$out" | sed -n 's/^submit 04 .*: job \([0-9]*\) .*/\1/p')
eval2=$(echo "$out" | sed -n 's/^submit 05 .*: job \([0-9]*\) .*/\1/p')
[ -n "$grpo" ] || die "no GRPO job id in: $out"
i=0
until [ "$(last_step_dir "$W/lake2")" -ge 4 ]; do
	i=$((i + 1)); [ $i -lt 3000 ] || die "GRPO did not reach step 4 in 300 s"
	sleep 0.1
done
scancel "${grpo}_1"
echo "   scancel ${grpo}_1 at step $(last_step_dir "$W/lake2")"
i=0
while [ -n "$(squeue -h -j "${grpo}_1" 2>/dev/null)" ]; do
	i=$((i + 1)); [ $i -lt 600 ] || die "task ${grpo}_1 still listed 60 s after scancel"
	sleep 0.1
done
sleep 2
if [ -n "$(squeue -h -j "${grpo}_0" 2>/dev/null)" ]; then
	ok "shard 0 waits for the killed shard 1 (it is still running)"
else
	bad "shard 0 ended without shard 1: $(states "$grpo")"
fi
scancel "$grpo"
wait_queue 120 || die "queue not empty 120 s after scancel $grpo"
echo "$(states "$eval2")" | grep -q "CANCELLED" && ok "eval after the killed array was cancelled by Slurm" || bad "eval job $eval2: $(states "$eval2")"
[ "$(last_step_dir "$W/lake2")" -lt "$LAST" ] && ok "run incomplete after the kill (last step folder $(last_step_dir "$W/lake2"))" || bad "run complete despite the kill: killed too late"
out=$(submit "$W/lake2") || die "resubmit failed: $out"
echo "$out"
[ "$(echo "$out" | grep -c '^skip ')" = 3 ] && ok "resubmit skips prepare, sft, eval" || bad "resubmit: $out"
ids=$(echo "$out" | sed -n 's/.*: job \([0-9]*\).*/\1/p')
wait_queue 600 || die "resumed pipeline did not finish in 600 s"
n_done=$(states $ids | grep -c " COMPLETED" || true)
[ "$n_done" = 4 ] && ok "resumed GRPO and eval: 4 array tasks COMPLETED" || bad "resumed job states: $(states $ids)"
[ "$(last_step_dir "$W/lake2")" = "$LAST" ] && ok "run complete through step $LAST after the resubmit" || bad "last step $(last_step_dir "$W/lake2")"
compare "$W/lake2" "after kill and resubmit"
"$R" lake verify --lake "$W/lake2" > /dev/null && ok "lake verify" || bad "lake verify $W/lake2"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ] || { echo "test-slurm: logs and lakes kept in $W" >&2; exit 1; }
cleanup
trap - EXIT
rm -rf "$W"
