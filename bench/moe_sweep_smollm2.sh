#!/usr/bin/env bash
# The full method's own training options on the validation split (issue 14), the counterpart of
# bench/kshot_ft_sweep_smollm2.sh for the MoE. Over a `kmoe demo --profile smollm2` work directory,
# per task and K-shot draw, the demo's pipeline config (DEMO/RUNS/TASK/drawD/run.ini) is run again in
# OUT/val/eE_lrLR/TASK/drawD with the [train] section's epochs and lr set to each of SETTINGS
# (epochs:lr) and the task's validation split as its evaluation set; the demo's score, expert
# selection, embeddings and data selection are copied in (the same inputs: kmoe run skips them), so
# only the MoE's training and evaluation run. For the run's own setting, the demo's validation
# evaluation (DEMO/RUNS/TASK/drawD/eval_validation.h5, `kmoe demo --eval-split validation`) is
# copied. tools/promot_dmt_table.py ft-val OUT prints the validation table and the best setting (it
# reads no test file).
# Then the chosen setting on the TEST split, per task and each of TEST_DRAWS, in OUT/test/TASK/drawD:
# the MoE that the validation run trained is copied in where there is one (training does not read
# the evaluation set; kmoe run skips it by its inputs' hashes and options), else it is trained; for
# the profile's own setting the demo's test evaluation is copied. With FT_SWEEP, the output folder of
# bench/kshot_ft_sweep_smollm2.sh, its tuned fine-tuning's test evaluation is copied beside it, and
# tools/promot_dmt_table.py moe-tuned sets the two tuned methods side by side with intervals.
# usage: bench/moe_sweep_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [SETTINGS]
#   defaults: TASKS "mc yesno math", DRAWS "0", SETTINGS "3:5e-4 3:2e-3" (3:5e-4 is the profile's);
#   TEST_DRAWS (default "0 1 2"; "" skips the test); FT_SWEEP (default none); NP (default 2);
#   TAG (default none): the `kmoe demo --sizes` run to start from.
# Resumable: kmoe run skips every complete stage. OUT/eval_archive.json.gz keeps the eval files;
# after `tools/bench_archive.py unpack ARCHIVE OUT` the table commands at the end print the tables.
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
is_profile() {  # RUN_INI EPOCHS LR: whether the run's [train] has these epochs and lr
  [ "$2" = "$(ini_train_key "$1" epochs)" ] &&
    [ "$(/usr/bin/python3 -c 'import sys; print(float(sys.argv[1]) == float(sys.argv[2]))' "$3" "$(ini_train_key "$1" lr)")" = True ]
}
rerun() {  # SRC OUT_RUN EVAL_SET EPOCHS LR: the demo's run SRC again in OUT_RUN with these
  local src=$1 o=$2 split=$3 e=$4 lr=$5 f
  for f in scores.h5 experts.h5 embeddings.h5 data_selection.h5 selected.jsonl; do
    [ -e "$o/$f" ] || cp "$src/$f" "$o/$f"
  done
  # run-dir, the evaluation set and the [train] section's epochs and lr; nothing else changes
  sed -e "s|^run-dir = .*|run-dir = $o|" -e "s|^test = .*|test = $split|" \
      -e "/^\[train\]/,/^\[/{s|^epochs = .*|epochs = $e|;s|^lr = .*|lr = $lr|}" "$src/run.ini" > "$o/run.ini.partial"
  grep -q "^test = $split$" "$o/run.ini.partial" || { echo "moe-sweep: $src/run.ini: no test key"; exit 1; }
  mv "$o/run.ini.partial" "$o/run.ini"
  run run --config "$o/run.ini" > "$o/run.log" 2>&1 || { tail -20 "$o/run.log"; exit 1; }
}
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
      if is_profile "$src/run.ini" "$e" "$lr" && [ -e "$src/eval_validation.h5" ]; then
        # the run's own setting: the demo's `--eval-split validation` run evaluated this very MoE
        [ -e "$o/eval.h5" ] || cp "$src/eval_validation.h5" "$o/eval.h5"
        echo "moe-sweep: $task draw $d, $e epochs at lr $lr: the demo's validation evaluation"
        continue
      fi
      rerun "$src" "$o" "$val" "$e" "$lr"
      echo "moe-sweep: $task draw $d, $e epochs at lr $lr, validation: $(($(date +%s) - t0)) s"
    done
  done
done
echo "validation: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
chosen=$(/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" ft-val "$OUT" | tee /dev/stderr | sed -n 's/^chosen: //p')
e=${chosen%%:*} lr=${chosen#*:}
for d in ${TEST_DRAWS-0 1 2}; do
  for task in $TASKS; do
    src="$DEMO/$RUNS/$task/draw$d"
    [ -e "$src/eval.h5" ] && [ -e "$src/eval_baselines.h5" ] || { echo "moe-sweep: $src has no test evaluation; skipped"; continue; }
    t0=$(date +%s)
    o="$OUT/test/$task/draw$d" v="$OUT/val/e${e}_lr$lr/$task/draw$d"
    mkdir -p "$o" "$OUT/demo_evals/runs/$task/draw$d"
    if is_profile "$src/run.ini" "$e" "$lr"; then
      cp "$src/run.ini" "$o/run.ini" && cp "$src/eval.h5" "$o/eval.h5"  # the demo's test evaluation of this MoE
    else
      [ -e "$o/moe.h5" ] || [ ! -e "$v/moe.h5" ] || cp "$v/moe.h5" "$o/moe.h5"
      rerun "$src" "$o" "$(ini_key "$src/run.ini" test)" "$e" "$lr"
    fi
    for f in eval.h5 eval_baselines.h5; do cp "$src/$f" "$OUT/demo_evals/runs/$task/draw$d/$f"; done
    if [ -n "${FT_SWEEP:-}" ] && [ -e "$FT_SWEEP/test/$task/draw$d/eval.h5" ]; then
      cp "$FT_SWEEP/test/$task/draw$d/eval.h5" "$o/eval_ft_tuned.h5"
    fi
    echo "moe-sweep: $task draw $d, $e epochs at lr $lr, test: $(($(date +%s) - t0)) s"
  done
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
/usr/bin/python3 "$HERE/../tools/bench_archive.py" pack "$OUT" "$OUT/eval_archive.json.gz"
if [ -d "$OUT/test" ]; then
  /usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" moe-tuned "$OUT/test" "$OUT/demo_evals"
fi
