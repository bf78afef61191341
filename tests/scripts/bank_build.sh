# `kmoe bank build` under np = 2: one adapter per dataset (3 datasets), bank.h5 listing
# them; a re-run skips the complete bank; with one adapter and bank.h5 removed, a re-run
# trains only that adapter and skips the two finished ones.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?}"
"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
args=(bank build --model "$WORK/model" --data "$WORK/data/task0.jsonl" "$WORK/data/task1.jsonl"
      "$WORK/data/task2.jsonl" --output-dir "$WORK/bank" --global-batch 4 --micro-batch 2 --max-steps 3
      --lora-r 2 --lr 1e-2 --threads 1 --log-all-ranks)
mpi -np 2 "$KMOE" "${args[@]}" 2> "$WORK/err1" || { cat "$WORK/err1"; fail "bank build"; }
for t in task0 task1 task2; do
  [ -f "$WORK/bank/$t/adapter_config.json" ] && [ -f "$WORK/bank/$t/adapter_model.safetensors" ] || fail "adapter $t missing"
  [ ! -e "$WORK/bank/$t.ckpt.h5" ] || fail "checkpoint of $t left behind"
done
"$PYTHON" - "$WORK/bank/bank.h5" <<'PY' || fail "bank.h5"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
assert [s.decode() for s in f["adapters"][()]] == ["task0", "task1", "task2"]
assert list(f["steps"][()]) == [3, 3, 3] and np.all(f["final_loss"][()] > 0)
PY
grep -q "rank 1: adapter 'task2'" "$WORK/err1" || fail "rank 1 did not train task2: $(cat "$WORK/err1")"
mpi -np 2 "$KMOE" "${args[@]}" 2> "$WORK/err2" || { cat "$WORK/err2"; fail "re-run"; }
grep -q "bank.h5 is complete for these inputs and options; skipping" "$WORK/err2" || fail "re-run did not skip: $(cat "$WORK/err2")"
rm -rf "$WORK/bank/task1" "$WORK/bank/bank.h5"
mpi -np 2 "$KMOE" "${args[@]}" 2> "$WORK/err3" || { cat "$WORK/err3"; fail "re-run after removal"; }
[ "$(grep -c "train.h5 is complete for these inputs and options; skipping" "$WORK/err3")" -eq 2 ] || fail "finished adapters not skipped: $(cat "$WORK/err3")"
[ -f "$WORK/bank/task1/adapter_model.safetensors" ] && [ -f "$WORK/bank/bank.h5" ] || fail "task1 not rebuilt"
echo "ok"
