#!/bin/sh
# examples/qwen/step.sh [--lora] — one GRPO step (STEPS steps) on a fresh
# lake, on the shape of the issue: PROMPTS prompts × SAMPLES samples,
# prompts padded to PROMPT_TOKENS tokens, NEW_TOKENS new tokens; prints
#   step_seconds=S step_tokens=T tokens_per_second=R checkpoint_bytes=B checkpoint_bytes_by_step=B1,B2,...
# (S: wall time of the GRPO steps' run per step; T: the tokens of a step's
# sequences, PROMPTS·SAMPLES·(PROMPT_TOKENS+NEW_TOKENS), which its
# logprobs and train stages each go through; R = T/S; B: bytes of the train
# checkpoint folders per step, their mean over the steps; Bi: step i's:
# light checkpoints in between full states, docs/checkpoints.md).
#
# Environment (defaults in brackets):
#   PROMPTS [8] SAMPLES [4] PROMPT_TOKENS [448] NEW_TOKENS [64]
#   MODEL      an HF folder to start from (else a random stand-in of CONFIG)
#   CONFIG     [examples/qwen/config.json: Qwen2.5-0.5B's shape]
#   TOKENIZER  [../shared/data/tokenizer/qwen3/tokenizer.json] (stand-in only)
#   LORA_RANK  [16] rank of --lora
#   DTYPE      [fp32] the policy's dtype: bf16 stores and runs the weights in bf16
#   STEPS      [1] GRPO steps (e.g. full_state_every of them, for bytes per step)
#   FULL_STATE_EVERY  train's full_state_every (default: train's own)
#   MEMORY     rljob run --memory (default: 3/4 of the available memory)
#   KEEP_LOGITS    train's keep_logits: 0 or 1 (default: kept for full fine-tuning
#              when the memory budget holds them, 1.2 MB a token: docs/memory.md)
#   RLJOB      [bin/rljob, built with make build when missing]
#   WRAP       a command put before the step's rljob, e.g. "/usr/bin/time -v"
#   KEEP=1     keep the work folder (printed)
set -eu
cd "$(dirname "$0")/../.."
PROMPTS=${PROMPTS:-8} SAMPLES=${SAMPLES:-4} PROMPT_TOKENS=${PROMPT_TOKENS:-448} NEW_TOKENS=${NEW_TOKENS:-64}
CONFIG=${CONFIG:-examples/qwen/config.json} TOKENIZER=${TOKENIZER:-../shared/data/tokenizer/qwen3/tokenizer.json}
RLJOB=${RLJOB:-bin/rljob} LORA_RANK=${LORA_RANK:-16} DATA=${DATA:-examples/gsm8k/sample.jsonl} STEPS=${STEPS:-1}
lora=0
case "${1:-}" in
--lora) lora=$LORA_RANK ;;
"") ;;
*) echo "usage: examples/qwen/step.sh [--lora]" >&2; exit 2 ;;
esac
[ -x "$RLJOB" ] || make build >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/rljob-qwen-step.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then echo "work folder: $work" >&2; else trap 'rm -rf "$work"' EXIT; fi

if [ -n "${MODEL:-}" ]; then
	tok=$MODEL
	set -- --set "model=$MODEL"
else
	[ -e "$TOKENIZER" ] || { echo "step.sh: no tokenizer at $TOKENIZER (set TOKENIZER=... or MODEL=...)" >&2; exit 2; }
	tok=$TOKENIZER
	set -- --set "config=$CONFIG" --set "tokenizer=$TOKENIZER"
fi
go run ./examples/qwen/mkprompts -tokenizer "$tok" -data "$DATA" -n "$PROMPTS" -tokens "$PROMPT_TOKENS" >"$work/prompts.jsonl"
"$RLJOB" run examples/qwen/init.sql --lake "$work/lake" --log-level warn "$@" ${DTYPE:+--set "dtype=$DTYPE"} >&2

t0=$(date +%s.%N)
${WRAP:-} "$RLJOB" run examples/qwen/grpo.sql --lake "$work/lake" --log-level ${LOG_LEVEL:-warn} ${MEMORY:+--memory "$MEMORY"} \
	--set "prompts=$work/prompts.jsonl" --set "samples=$SAMPLES" --set "new_tokens=$NEW_TOKENS" --set "lora=$lora" \
	${FULL_STATE_EVERY:+--set "full_state_every=$FULL_STATE_EVERY"} ${KEEP_LOGITS:+--set "keep_logits=$KEEP_LOGITS"} --steps "$STEPS" >&2
t1=$(date +%s.%N)
total=0 by=""
for i in $(seq 1 "$STEPS"); do
	b=$(du -sb "$work"/lake/checkpoints/run=main/step=$i | cut -f1)
	total=$((total + b)) by=${by:+$by,}$b
done
sec=$(echo "($t1 - $t0) / $STEPS" | bc -l | cut -c1-8)
tokens=$((PROMPTS * SAMPLES * (PROMPT_TOKENS + NEW_TOKENS)))
echo "step_seconds=$sec step_tokens=$tokens tokens_per_second=$(echo "$tokens / $sec" | bc -l | cut -c1-7) checkpoint_bytes=$((total / STEPS)) checkpoint_bytes_by_step=$by"
