#!/usr/bin/env bash
# Is it the mixture or the data? (issue 14) Over a `kmoe demo --profile smollm2` work directory,
# per task and K-shot draw: the demo's best bank adapter (by K-shot score) fine-tuned as one LoRA
# on exactly the data the full method's MoE trained on (the run's selected.jsonl: the K-shot set
# and the C selected open rows), with the MoE's training options from the run's [train] section
# (epochs, lr, batch, max-len, seed), then evaluated on the run's test set. Then
# tools/promot_dmt_table.py lora sets it beside the demo's full method, its best adapter +
# K-shot fine-tuning and its random-adapter MoE: mean ± sd over draws, paired-bootstrap intervals.
# usage: bench/selected_lora_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS]
#   defaults: TASKS "yesno math mc", DRAWS "0 1 2"; NP (default 2); TAG (default none): the
#   `kmoe demo --sizes` run to start from (bench/demo_runs_common.sh).
# Resumable: kmoe train and eval skip complete outputs. OUT/eval_archive.json.gz keeps the eval
# files of OUT and the demo's that the table reads (OUT/demo_evals): after `tools/bench_archive.py
# unpack ARCHIVE OUT`, `tools/promot_dmt_table.py lora OUT OUT/demo_evals` prints the table.
set -euo pipefail
BUILD=${1:?usage: bench/selected_lora_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS]}
DEMO=${2:?demo work dir}
OUT=${3:?output dir}
TASKS=${4:-yesno math mc}
DRAWS=${5:-0 1 2}
NP=${NP:-2}
source "$(dirname "$0")/demo_runs_common.sh"
start=$(date +%s)
for d in $DRAWS; do
  for task in $TASKS; do
    t0=$(date +%s)
    src="$DEMO/$RUNS/$task/draw$d"
    o="$OUT/$task/draw$d"
    [ -e "$src/eval.h5" ] && [ -e "$src/eval_baselines.h5" ] ||
      { echo "selected-lora: $src has no eval.h5 or eval_baselines.h5 (run the demo first); skipped"; continue; }
    mkdir -p "$o"
    cp "$src/run.ini" "$o/run.ini"  # the run's sizes, for the table's header
    key() { ini_key "$src/run.ini" "$1"; }
    tkey() { ini_train_key "$src/run.ini" "$1"; }
    best=$(best_adapter "$task" "$d")
    run train --mode lora --model "$(key model)" --init-adapter "$best" \
      --data "$src/selected.jsonl" --prompt-format "$(tkey prompt-format)" --epochs "$(tkey epochs)" \
      --global-batch "$(tkey global-batch)" --micro-batch "$(tkey micro-batch)" --lr "$(tkey lr)" \
      --max-len "$(tkey max-len)" --seed "$(tkey seed)" --lora-dropout 0 --threads 1 \
      --output "$o/best_adapter_selected" > /dev/null 2>> "$o/run.log" || { tail -20 "$o/run.log"; exit 1; }
    eval_args "$src/run.ini" "$task"
    run "${ev[@]}" --adapters "$o/best_adapter_selected" \
      --output "$o/eval_selected_lora.h5" > /dev/null 2>> "$o/run.log" || { tail -20 "$o/run.log"; exit 1; }
    for f in eval.h5 eval_baselines.h5; do
      mkdir -p "$OUT/demo_evals/runs/$task/draw$d"
      cp "$src/$f" "$OUT/demo_evals/runs/$task/draw$d/$f"
    done
    echo "selected-lora: $task draw $d ($(wc -l < "$src/selected.jsonl") rows, best adapter $(basename "$best")): $(($(date +%s) - t0)) s"
  done
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
/usr/bin/python3 "$HERE/../tools/bench_archive.py" pack "$OUT" "$OUT/eval_archive.json.gz"
/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" lora "$OUT" "$OUT/demo_evals"
