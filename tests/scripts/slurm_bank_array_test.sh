# slurm/bank-array.sbatch on a real one-node cluster, with a stand-in for kmoe that records
# how it was called: a 3-task array shares 5 datasets round-robin (comments and blank lines
# in the list skipped), passes the other arguments through, and a task whose kmoe exits 75
# (checkpointed, requeue me) is requeued and runs again to completion; each task trains its
# slice with --no-index. Then with the real kmoe: a 2-task array over 3 datasets leaves a
# bank.h5 that lists all 3 adapters, written once by the task that found them all done.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../../slurm/cluster-test-lib.sh"

cat > fake-kmoe <<'SH'
#!/bin/bash
echo "task=$SLURM_ARRAY_TASK_ID restart=${SLURM_RESTART_COUNT:-0} args=$*" >> "$WORK/calls.$SLURM_ARRAY_TASK_ID"
# Task 1's first run stops as `kmoe train` does on USR1: checkpointed, exit 75.
[ "$SLURM_ARRAY_TASK_ID" = 1 ] && [ "${SLURM_RESTART_COUNT:-0}" = 0 ] && exit 75
exit 0
SH
chmod +x fake-kmoe
printf '%s\n' "# datasets" d1.jsonl d2.jsonl "" d3.jsonl d4.jsonl d5.jsonl > datasets.txt
export WORK  # the stand-in writes its calls there
id=$(KMOE="$WORK/fake-kmoe" sbatch --parsable --array=0-2 -n 1 --time=5 \
  --output="$WORK/bank-%A_%a.out" "$SLURM_DIR/bank-array.sbatch" datasets.txt --model M --output-dir B) ||
  slurm_fail "sbatch"
for t in 0 1 2; do job_wait "${id}_$t" 90; done

expect() {  # expect TASK LINE...: the calls the stand-in recorded for array task TASK
  local task=$1
  shift
  diff <(printf '%s\n' "$@") "$WORK/calls.$task" || slurm_fail "array task $task called kmoe otherwise"
}
expect 0 "task=0 restart=0 args=bank build --model M --output-dir B --no-index --data d1.jsonl d4.jsonl"
expect 1 "task=1 restart=0 args=bank build --model M --output-dir B --no-index --data d2.jsonl d5.jsonl" \
  "task=1 restart=1 args=bank build --model M --output-dir B --no-index --data d2.jsonl d5.jsonl"
expect 2 "task=2 restart=0 args=bank build --model M --output-dir B --no-index --data d3.jsonl"
grep -q "array task 2 of 3: 1 of 5 datasets" "$WORK/bank-${id}_2.out" || slurm_fail "task 2's log"

# The real kmoe: a tiny base model, three open datasets, two array tasks.
"$KMOE" init-model --output "$WORK/model" --layers 1 --hidden 16 --heads 2 --kv-heads 1 --intermediate 32 \
  >/dev/null 2>&1 || slurm_fail "init-model"
"$PYTHON" - "$WORK" <<'PY'
import json, sys
for name in ("alpha", "beta", "gamma"):
    with open("%s/%s.jsonl" % (sys.argv[1], name), "w") as f:
        for i in range(4):
            f.write(json.dumps({"instruction": "%s %d" % (name, i), "output": str(i)}) + "\n")
PY
printf '%s\n' "$WORK/alpha.jsonl" "$WORK/beta.jsonl" "$WORK/gamma.jsonl" > real.txt
id=$(KMOE="$KMOE" sbatch --parsable --array=0-1 -n 1 --time=5 --output="$WORK/real-%A_%a.out" \
  "$SLURM_DIR/bank-array.sbatch" real.txt --model "$WORK/model" --output-dir "$WORK/bank" --max-steps 1 \
  --global-batch 2 --micro-batch 2 --max-len 512 --lora-r 2 --checkpoint-every 0 --threads 1) ||
  slurm_fail "sbatch (real kmoe)"
for t in 0 1; do job_wait "${id}_$t" 180; done
cat "$WORK"/real-"${id}"_*.out | grep -q "indexing all 3" || slurm_fail "no task indexed the bank"
"$PYTHON" - "$WORK/bank/bank.h5" <<'PY' || slurm_fail "bank.h5 after the array"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["complete"] == 1
    names = [x.decode() if isinstance(x, bytes) else x for x in f["adapters"][()]]
    assert names == ["alpha", "beta", "gamma"], names
PY
echo ok
