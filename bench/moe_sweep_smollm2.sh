#!/usr/bin/env bash
# The full method's own training options on the validation split (issue 14), the counterpart of
# bench/kshot_ft_sweep_smollm2.sh for the MoE. Over a `kmoe demo --profile smollm2` work directory,
# per task and K-shot draw, the demo's pipeline config (DEMO/RUNS/TASK/drawD/run.ini) is run again in
# OUT/val/eE_lrLR/TASK/drawD with the [train] section's epochs and lr set to each of SETTINGS
# (epochs:lr) and the task's validation split as its evaluation set; the demo's score, expert
# selection, embeddings and data selection are copied in (the same inputs: kmoe run skips them), so
# only the MoE's training and evaluation run. For the run's own setting, the demo's validation
# evaluation (DEMO/RUNS/TASK/drawD/eval_validation.h5, `kmoe demo --eval-split validation`) is copied. tools/promot_dmt_table.py ft-val OUT prints the
# validation table and the best setting (it reads no test file).
# usage: bench/moe_sweep_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [SETTINGS]
#   defaults: TASKS "mc yesno math", DRAWS "0", SETTINGS "3:5e-4 3:2e-3" (3:5e-4 is the profile's);
#   NP (default 2); TAG (default none): the `kmoe demo --sizes` run to start from.
# Resumable: kmoe run skips every complete stage.
set -euo pipefail
BUILD=${1:?usage: bench/moe_sweep_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [SETTINGS]}
DEMO=${2:?demo work dir}
OUT=${3:?output dir}
TASKS=${4:-mc yesno math}
DRAWS=${5:-0}
SETTINGS=${6:-3:5e-4 3:2e-3}
NP=${NP:-2}
source "$(dirname "$0")/demo_runs_common.sh"
start=$(date +%s)
for d in $DRAWS; do
  for task in $TASKS; do
    src="$DEMO/$RUNS/$task/draw$d"
    [ -e "$src/selected.jsonl" ] || { echo "moe-sweep: $src has no selected.jsonl (run the demo first); skipped"; continue; }
    val="$(dirname "$(ini_key "$src/run.ini" test)")/validation.jsonl"
    for s in $SETTINGS; do
      t0=$(date +%s)
      e=${s%%:*} lr=${s#*:}
      o="$OUT/val/e${e}_lr$lr/$task/draw$d"
      mkdir -p "$o"
      if [ "$e" = "$(ini_train_key "$src/run.ini" epochs)" ] && [ "$(/usr/bin/python3 -c 'import sys; print(float(sys.argv[1]) == float(sys.argv[2]))' "$lr" "$(ini_train_key "$src/run.ini" lr)")" = True ] &&
         [ -e "$src/eval_validation.h5" ]; then
        # the run's own setting: the demo's `--eval-split validation` run evaluated this very MoE
        [ -e "$o/eval.h5" ] || cp "$src/eval_validation.h5" "$o/eval.h5"
        echo "moe-sweep: $task draw $d, $e epochs at lr $lr: the demo's validation evaluation"
        continue
      fi
      for f in scores.h5 experts.h5 embeddings.h5 data_selection.h5 selected.jsonl; do
        [ -e "$o/$f" ] || cp "$src/$f" "$o/$f"
      done
      # run-dir, the evaluation set and the [train] section's epochs and lr; nothing else changes
      sed -e "s|^run-dir = .*|run-dir = $o|" -e "s|^test = .*|test = $val|" \
          -e "/^\[train\]/,/^\[/{s|^epochs = .*|epochs = $e|;s|^lr = .*|lr = $lr|}" "$src/run.ini" > "$o/run.ini.partial"
      grep -q "^test = $val$" "$o/run.ini.partial" || { echo "moe-sweep: $src/run.ini: no test key"; exit 1; }
      mv "$o/run.ini.partial" "$o/run.ini"
      run run --config "$o/run.ini" > "$o/run.log" 2>&1 || { tail -20 "$o/run.log"; exit 1; }
      echo "moe-sweep: $task draw $d, $e epochs at lr $lr, validation: $(($(date +%s) - t0)) s"
    done
  done
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" ft-val "$OUT"
