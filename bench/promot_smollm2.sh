#!/usr/bin/env bash
# ProMoT on SmolLM2-135M-Instruct (issue 15): what specialising on one task costs the model's
# other abilities, and what ProMoT keeps. The task is the suite's `yesno`; per seed s its
# training data is the K-shot draw s (16 examples) plus ROWS rows of the open yesno family
# (tools/general_sets.py train, drawn with seed s). Per seed (kmoe train, one LoRA each, the
# bank's settings: r 8, q_proj/v_proj, lr 1e-3, batch 8, 2 epochs; nothing tuned):
#   ft      plain fine-tuning (LoRA)
#   pt      prompt tuning alone (P virtual tokens, init from the task's instruction text,
#           Adafactor lr 0.3 as ProMoT/T5 prompt tuning)
#   joint   LoRA and soft prompt trained together (--mode lora+prompt, AdamW lr 1e-3)
#   promot  ProMoT: LoRA trained with pt's prompt frozen before every sequence
# Evaluated (kmoe eval, greedy, first N_TEST test examples):
#   in task: yesno zero-shot, each model as it was trained (pt, joint and promot with their prompt);
#   out of task: mc, math and chat (chat.copy rows, exact match), 1-shot, every model
#   without any soft prompt (ProMoT uses the prompt for its own task's format only, so
#   pt alone is the base model there).
# Then tools/promot_dmt_table.py promot prints the table (mean +- sd over seeds, paired
# bootstrap intervals) with format leakage: the share of out-of-task replies that answer yes/no.
# usage: bench/promot_smollm2.sh BUILD_DIR SUITE_DIR OUT_DIR [SEEDS] [N_TEST] [ROWS] [PROMPT_TOKENS]
#   defaults: SEEDS "0 1 2", N_TEST 100, ROWS 200, PROMPT_TOKENS 20. DTYPE (default bfloat16,
#   the same for every row) and NP (default 2) from the environment.
# Resumable: every step is a kmoe stage, skipped when complete. The eval files end in
# OUT/eval_archive.json.gz (bench/results/promot_smollm2.json.gz is the one in bench/RESULTS.md):
# to add a seed on a fresh machine, `tools/bench_archive.py unpack bench/results/promot_smollm2.json.gz
# OUT`, then run this with SEEDS set to the new seed.
set -euo pipefail
BUILD=${1:?usage: bench/promot_smollm2.sh BUILD_DIR SUITE_DIR OUT_DIR [SEEDS] [N_TEST] [ROWS] [PROMPT_TOKENS]}
SUITE=${2:?suite dir: the suite/ of a kmoe demo --profile smollm2 work dir}
OUT=${3:?output dir}
SEEDS=${4:-0 1 2}
N_TEST=${5:-100}
ROWS=${6:-200}
P=${7:-20}
source "$(dirname "$0")/smollm2_common.sh"
tr=("${common[@]}" --lora-r 8 --lora-alpha 16 --lora-targets q_proj,v_proj --global-batch 8 --micro-batch 4 --epochs 2
    --max-len 256 --log-every 10)
mkdir -p "$OUT/base"
ev "$OUT/base/in_yesno.h5" "$T/yesno-0shot.jsonl" yesno --base
for task in mc math chat; do ev "$OUT/base/out_$task.h5" "$T/$task-1shot.jsonl" "$task" --base; done
for s in $SEEDS; do
  t0=$(date +%s)
  o="$OUT/seed$s"
  mkdir -p "$o"
  [ -e "$o/data/yesno.jsonl" ] || /usr/bin/python3 "$HERE/../tools/general_sets.py" train "$SUITE" "$o/data" "$s" "$ROWS"
  kshot="$SUITE/tasks/yesno/kshot.jsonl"
  [ "$s" = 0 ] || kshot="$SUITE/tasks/yesno/kshot-$s.jsonl"
  data=(--data "$kshot" "$o/data/yesno.jsonl" --seed $((42 + s)))
  prompt=(--prompt-tokens "$P" --prompt-init text --prompt-init-text "Answer the question with yes or no.")
  run train "${tr[@]}" "${data[@]}" --mode lora --lr 1e-3 --output "$o/ft"
  run train "${tr[@]}" "${data[@]}" --mode prompt "${prompt[@]}" --optimizer adafactor --lr 0.3 --output "$o/pt"
  run train "${tr[@]}" "${data[@]}" --mode lora+prompt "${prompt[@]}" --lr 1e-3 --output "$o/joint"
  run train "${tr[@]}" "${data[@]}" --mode lora --soft-prompt "$o/pt" --lr 1e-3 --output "$o/promot"
  ev "$o/in_ft.h5" "$T/yesno-0shot.jsonl" yesno --adapters "$o/ft"
  ev "$o/in_pt.h5" "$T/yesno-0shot.jsonl" yesno --base --soft-prompt "$o/pt"
  ev "$o/in_joint.h5" "$T/yesno-0shot.jsonl" yesno --adapters "$o/joint" --soft-prompt "$o/joint/soft_prompt"
  ev "$o/in_promot.h5" "$T/yesno-0shot.jsonl" yesno --adapters "$o/promot" --soft-prompt "$o/pt"
  for task in mc math chat; do
    ev "$o/out_$task.h5" "$T/$task-1shot.jsonl" "$task" --adapters "$o/ft" "$o/joint" "$o/promot"
  done
  echo "promot bench: seed $s: $(($(date +%s) - t0)) s"
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP, $DTYPE)"
pack_evals
/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" promot "$OUT"
