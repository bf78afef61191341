#!/usr/bin/env bash
# ProMoT's soft prompt with kmoe's mixture of experts (issue 15), against the plain full
# method, over a `kmoe demo --profile smollm2` work directory. Per task and K-shot draw, the
# demo's pipeline config (DEMO/runs/TASK/drawD/run.ini) is run again in OUT/TASK/drawD with a
# [train.prompt] section: a soft prompt of P virtual tokens trained on the K-shot set
# (init from the task's instruction text, Adafactor lr 0.3, 10 epochs), then the same MoE
# trained with it frozen before every sequence, then eval with it. The demo's score, expert
# selection, embeddings and data selection are copied in (the same inputs, so kmoe run skips
# them). Then the base model with the soft prompt alone (eval_prompt_only.h5), and the control:
# the demo's best adapter fine-tuned on the K-shot set as the demo does (KSHOT_EPOCHS 5, KSHOT_LR
# 5e-4: the smollm2 profile's), with the same soft prompt frozen (eval_control.h5). Then
# tools/promot_dmt_table.py moe compares OUT's eval.h5 with the demo's (the full method
# without the prompt) and with the prompt alone: mean ± sd over draws, paired-bootstrap intervals.
# usage: bench/promot_moe_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [PROMPT_TOKENS]
#   defaults: TASKS "yesno math mc", DRAWS "0 1 2", PROMPT_TOKENS 20; NP (default 2).
#   TAG (default none): the `kmoe demo --sizes` run to start from (bench/demo_runs_common.sh).
# Resumable: kmoe run skips every complete stage. OUT/eval_archive.json.gz keeps the eval files of
# OUT and the demo's that the table reads (OUT/demo_evals): after `tools/bench_archive.py unpack
# ARCHIVE OUT` on a fresh machine, `tools/promot_dmt_table.py moe OUT OUT/demo_evals` prints the table.
set -euo pipefail
BUILD=${1:?usage: bench/promot_moe_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [PROMPT_TOKENS]}
DEMO=${2:?demo work dir}
OUT=${3:?output dir}
TASKS=${4:-yesno math mc}
DRAWS=${5:-0 1 2}
P=${6:-20}
NP=${NP:-2}
KSHOT_EPOCHS=${KSHOT_EPOCHS:-5} KSHOT_LR=${KSHOT_LR:-5e-4}  # the smollm2 profile's K-shot LoRA baseline
source "$(dirname "$0")/demo_runs_common.sh"
declare -A INIT=([yesno]="Answer the question with yes or no." [math]="Solve the word problem and give the number."
                 [mc]="Choose the letter of the right option." [string]="Apply the string functions to the word.")
start=$(date +%s)
for d in $DRAWS; do
  for task in $TASKS; do
    t0=$(date +%s)
    src="$DEMO/$RUNS/$task/draw$d"
    o="$OUT/$task/draw$d"
    [ -e "$src/eval.h5" ] || { echo "promot+moe: $src has no eval.h5 (run the demo first); skipped"; continue; }
    mkdir -p "$o"
    for f in scores.h5 experts.h5 embeddings.h5 data_selection.h5 selected.jsonl; do
      [ -e "$o/$f" ] || cp "$src/$f" "$o/$f"
    done
    sed "s|^run-dir = .*|run-dir = $o|" "$src/run.ini" > "$o/run.ini.partial"
    cat >> "$o/run.ini.partial" <<EOF
[train.prompt]
prompt-tokens = $P
prompt-init = text
prompt-init-text = ${INIT[$task]}
optimizer = adafactor
lr = 0.3
epochs = 10
global-batch = 8
micro-batch = 8
max-len = 256
seed = $d
EOF
    mv "$o/run.ini.partial" "$o/run.ini"
    run run --config "$o/run.ini" > "$o/run.log" 2>&1 || { tail -20 "$o/run.log"; exit 1; }
    # the soft prompt alone (the base model with it, no experts): what the prompt brings by itself
    key() { ini_key "$o/run.ini" "$1"; }
    eval_args "$o/run.ini" "$task"
    ev+=(--soft-prompt "$o/soft_prompt")
    run "${ev[@]}" --base --output "$o/eval_prompt_only.h5" > /dev/null 2>> "$o/run.log" || { tail -20 "$o/run.log"; exit 1; }
    # the control: the strongest plain baseline (the demo's best adapter by K-shot score, fine-tuned
    # on the K-shot set with the demo's options) trained and evaluated with the same soft prompt
    # frozen, so that the MoE's gain with the prompt is told apart from the prompt's own
    best=$(best_adapter "$task" "$d")
    n=$(grep -c . "$(key kshot)")
    batch=$((n < 8 ? n : 8))  # as the demo: min(K, 8)
    run train --mode lora --model "$(key model)" --init-adapter "$best" \
      --data "$(key kshot)" --soft-prompt "$o/soft_prompt" --prompt-format chat --epochs "$KSHOT_EPOCHS" \
      --global-batch "$batch" --micro-batch "$batch" --lr "$KSHOT_LR" --max-len 256 --seed 0 --lora-dropout 0 --threads 1 \
      --output "$o/best_adapter_kshot_prompt" > /dev/null 2>> "$o/run.log" || { tail -20 "$o/run.log"; exit 1; }
    run "${ev[@]}" --adapters "$o/best_adapter_kshot_prompt" \
      --output "$o/eval_control.h5" > /dev/null 2>> "$o/run.log" || { tail -20 "$o/run.log"; exit 1; }
    echo "promot+moe: $task draw $d: $(($(date +%s) - t0)) s"
  done
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
# the demo's eval files that the table compares with go into the archive too (OUT/demo_evals/runs,
# whatever TAG: the table reads them from there)
for e in "$OUT"/*/draw*/eval.h5; do
  for f in eval.h5 eval_baselines.h5; do
    rel=$(dirname "${e#"$OUT"/}")/$f
    src="$DEMO/$RUNS/$rel"
    [ ! -e "$src" ] || { mkdir -p "$(dirname "$OUT/demo_evals/runs/$rel")"; cp "$src" "$OUT/demo_evals/runs/$rel"; }
  done
done
/usr/bin/python3 "$HERE/../tools/bench_archive.py" pack "$OUT" "$OUT/eval_archive.json.gz"
/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" moe "$OUT" "$OUT/demo_evals"
