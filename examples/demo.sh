#!/bin/sh
# examples/demo.sh — what `make demo` runs after `make build`: first the GSM8K
# example (examples/gsm8k, the data plane without a model) with bin/rljob into
# a fresh lake, then its accuracy; then the arithmetic GRPO demo
# (examples/arith/demo.sh: SFT warm-up, pass@k, GRPO, pass@k again).
# GSM8K's reference solutions are scored as completions, so the expected
# accuracy is 1.0; any row that fails is listed with its extracted answer.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/rljob}
LAKE=examples/gsm8k/lake
DATA=../shared/data/gsm8k/test.jsonl
if [ ! -f "$DATA" ]; then
	echo "demo: $DATA not found; using the 50-row sample examples/gsm8k/sample.jsonl"
	DATA=examples/gsm8k/sample.jsonl
fi
rm -rf "$LAKE"

echo "\$ rljob run examples/gsm8k/gsm8k.sql --lake $LAKE --set data=$DATA"
"$BIN" run examples/gsm8k/gsm8k.sql --lake "$LAKE" --set "data=$DATA" --log-format console --run demo 2>&1

echo
echo "\$ rljob lake ls --lake $LAKE"
"$BIN" lake ls --lake "$LAKE"
echo
echo "\$ rljob lake verify --lake $LAKE"
"$BIN" lake verify --lake "$LAKE"
echo
echo "\$ rljob sql --lake $LAKE \"SELECT name, value FROM metrics ORDER BY name\""
"$BIN" sql --lake "$LAKE" "SELECT name, value FROM metrics ORDER BY name"

failed=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) FROM scored WHERE NOT correct" | tail -n 1)
if [ "$failed" != 0 ]; then
	echo
	echo "rows that fail (the gsm8k verifier read a different number than the answer after ####):"
	"$BIN" sql --lake "$LAKE" "SELECT prompt_id, answer, extracted, right(completion, 60) AS completion_end FROM scored WHERE NOT correct ORDER BY prompt_id"
fi
acc=$("$BIN" sql --lake "$LAKE" --format csv "SELECT value FROM metrics WHERE name = 'accuracy'" | tail -n 1)
echo
echo "accuracy: $acc"

echo
echo "== examples/arith: SFT, then GRPO; held-out pass@k before and after RL =="
sh examples/arith/demo.sh
