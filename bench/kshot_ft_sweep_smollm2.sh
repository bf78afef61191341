#!/usr/bin/env bash
# Is the K-shot fine-tuning baseline tuned as well as the method? (issue 14) Over a `kmoe demo
# --profile smollm2` work directory, per task and K-shot draw: the demo's best bank adapter (by
# K-shot score) fine-tuned on the draw's K-shot set with each of SETTINGS (epochs:lr; the rest as
# the demo trains it: chat prompts, batch 8, max-len 256, seed 0, no dropout), each evaluated on the
# task's VALIDATION split. tools/promot_dmt_table.py ft-val picks the setting with the best
# validation accuracy averaged over tasks and draws (test is not read); that setting's adapters are
# then evaluated on the test set, and tools/promot_dmt_table.py ft sets them beside the demo's full
# method, its K-shot fine-tuning with the profile's setting and its K-shot-only MoE.
# usage: bench/kshot_ft_sweep_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [SETTINGS]
#   defaults: TASKS "mc yesno math", DRAWS "0 1 2", SETTINGS "5:5e-4 5:2e-3 5:1e-2 10:2e-3 10:1e-2 2:1e-2"
#   (5:5e-4 is the profile's); NP (default 2); TAG (default none): the `kmoe demo --sizes` run
#   whose best adapters, K-shot sets and test evaluations it starts from (bench/demo_runs_common.sh).
# Resumable: kmoe train and eval skip complete outputs. OUT/eval_archive.json.gz keeps the eval
# files; after `tools/bench_archive.py unpack ARCHIVE OUT` the two table commands at the end print
# the tables again.
set -euo pipefail
BUILD=${1:?usage: bench/kshot_ft_sweep_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [SETTINGS]}
DEMO=${2:?demo work dir}
OUT=${3:?output dir}
TASKS=${4:-mc yesno math}
DRAWS=${5:-0 1 2}
SETTINGS=${6:-5:5e-4 5:2e-3 5:1e-2 10:2e-3 10:1e-2 2:1e-2}
NP=${NP:-2}
source "$(dirname "$0")/demo_runs_common.sh"
start=$(date +%s)
train_eval() {  # TASK DRAW SRC EPOCHS LR SPLIT_FILE OUT_H5: the fine-tuned adapter, then its evaluation
  local task=$1 d=$2 src=$3 e=$4 lr=$5 split=$6 out_h5=$7
  local a="$OUT/adapters/$task/draw$d/e${e}_lr$lr" best
  best=$(best_adapter "$task" "$d")  # a plain assignment, so that set -e stops on its error
  mkdir -p "$(dirname "$a")" "$(dirname "$out_h5")"
  run train --mode lora --model "$(ini_key "$src/run.ini" model)" --init-adapter "$best" \
    --data "$(ini_key "$src/run.ini" kshot)" --prompt-format chat --epochs "$e" --global-batch 8 --micro-batch 8 \
    --lr "$lr" --max-len 256 --seed 0 --lora-dropout 0 --threads 1 --output "$a" > /dev/null 2>> "$OUT/run.log" ||
    { tail -20 "$OUT/run.log"; exit 1; }
  eval_args "$src/run.ini" "$task"
  [ "${ev[3]}" = --test ] || { echo "kshot-ft: eval_args changed: ${ev[*]}"; exit 1; }
  ev[4]=$split  # the split to evaluate on
  run "${ev[@]}" --adapters "$a" --output "$out_h5" > /dev/null 2>> "$OUT/run.log" || { tail -20 "$OUT/run.log"; exit 1; }
}
mkdir -p "$OUT"
for d in $DRAWS; do
  for task in $TASKS; do
    src="$DEMO/$RUNS/$task/draw$d"
    [ -e "$src/run.ini" ] || { echo "kshot-ft: $src has no run.ini (run the demo first); skipped"; continue; }
    val="$(dirname "$(ini_key "$src/run.ini" test)")/validation.jsonl"
    for s in $SETTINGS; do
      t0=$(date +%s)
      e=${s%%:*} lr=${s#*:}
      train_eval "$task" "$d" "$src" "$e" "$lr" "$val" "$OUT/val/e${e}_lr$lr/$task/draw$d/eval.h5"
      echo "kshot-ft: $task draw $d, $e epochs at lr $lr, validation: $(($(date +%s) - t0)) s"
    done
  done
done
chosen=$(/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" ft-val "$OUT" | tee /dev/stderr | sed -n 's/^chosen: //p')
e=${chosen%%:*} lr=${chosen#*:}
for d in $DRAWS; do
  for task in $TASKS; do
    src="$DEMO/$RUNS/$task/draw$d"
    [ -e "$src/eval.h5" ] && [ -e "$src/eval_baselines.h5" ] || continue
    o="$OUT/test/$task/draw$d"
    mkdir -p "$o" "$OUT/demo_evals/runs/$task/draw$d"
    cp "$src/run.ini" "$o/run.ini"  # the run's sizes, for the table's header
    # the chosen setting's adapter under one name, so that its evaluation row is "ft_tuned"
    rm -rf "$o/ft_tuned" && cp -r "$OUT/adapters/$task/draw$d/e${e}_lr$lr" "$o/ft_tuned"
    eval_args "$src/run.ini" "$task"
    run "${ev[@]}" --adapters "$o/ft_tuned" --output "$o/eval.h5" > /dev/null 2>> "$OUT/run.log" ||
      { tail -20 "$OUT/run.log"; exit 1; }
    for f in eval.h5 eval_baselines.h5; do cp "$src/$f" "$OUT/demo_evals/runs/$task/draw$d/$f"; done
  done
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
/usr/bin/python3 "$HERE/../tools/bench_archive.py" pack "$OUT" "$OUT/eval_archive.json.gz"
/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" ft "$OUT/test" "$OUT/demo_evals"
