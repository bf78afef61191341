#!/usr/bin/env bash
# DMT on SmolLM2-135M-Instruct (issue 15): specialised data (ROWS rows of the arith family,
# the math task's related family) against general data (ROWS rows of the chat family, the
# chat test's rows excluded), drawn per seed s (tools/general_sets.py train). Per seed, one
# `kmoe dmt` (LoRA, the bank's settings: r 8, q_proj/v_proj, lr 1e-3, batch 8, 2 epochs per
# stage; nothing tuned) trains: special (specialised only), general (general only), mixed
# (both in one stage), sequential (special, then general), and DMT at each k (special, then
# general + k of the specialised data, a fresh optimizer).
# Evaluated (kmoe eval, greedy, first N_TEST test examples, 1-shot): specialised = N_TEST
# arith-family rows the seed's specialised data does not hold (in distribution; per seed, so
# the base model is evaluated on each) and the math task (transfer to word problems); general =
# chat (chat.copy rows, exact match) and the yesno task (mc sits at chance and string at 0 for
# every SmolLM2 row of the method's tables, so they are left out).
# Then tools/promot_dmt_table.py dmt prints the table (mean +- sd over seeds) and plots the
# trade-off over k (OUT/dmt.png).
# usage: bench/dmt_smollm2.sh BUILD_DIR SUITE_DIR OUT_DIR [SEEDS] [N_TEST] [ROWS] [K_LIST]
#   defaults: SEEDS "0 1 2", N_TEST 100, ROWS 200, K_LIST 1,1/4,1/16,1/64,1/256. DTYPE (default
#   bfloat16, the same for every row) and NP (default 2) from the environment.
# Resumable: every step is a kmoe stage, skipped when complete. The eval files end in
# OUT/eval_archive.json.gz (bench/results/dmt_smollm2.json.gz is the one in bench/RESULTS.md): to add
# a seed on a fresh machine, `tools/bench_archive.py unpack bench/results/dmt_smollm2.json.gz OUT`,
# then run this with SEEDS set to the new seed; the table then covers every seed in OUT.
set -euo pipefail
BUILD=${1:?usage: bench/dmt_smollm2.sh BUILD_DIR SUITE_DIR OUT_DIR [SEEDS] [N_TEST] [ROWS] [K_LIST]}
SUITE=${2:?suite dir: the suite/ of a kmoe demo --profile smollm2 work dir}
OUT=${3:?output dir}
SEEDS=${4:-0 1 2}
N_TEST=${5:-100}
ROWS=${6:-200}
KS=${7:-1,1/4,1/16,1/64,1/256}
source "$(dirname "$0")/smollm2_common.sh"
mkdir -p "$OUT/base"
for task in math chat yesno; do ev "$OUT/base/$task.h5" "$T/$task-1shot.jsonl" "$task" --base; done
for s in $SEEDS; do
  t0=$(date +%s)
  o="$OUT/seed$s"
  mkdir -p "$o"
  [ -e "$o/data/general.jsonl" ] || /usr/bin/python3 "$HERE/../tools/general_sets.py" train "$SUITE" "$o/data" "$s" "$ROWS"
  run dmt "${common[@]}" --special "$o/data/special.jsonl" --general "$o/data/general.jsonl" --k "$KS" --mode lora \
    --lora-r 8 --lora-alpha 16 --lora-targets q_proj,v_proj --global-batch 8 --micro-batch 4 --epochs 2 --lr 1e-3 \
    --max-len 256 --seed $((42 + s)) --output-dir "$o/runs"
  runs=("$o/runs/special" "$o/runs/general" "$o/runs/mixed" "$o/runs/sequential")
  for d in "$o"/runs/dmt-k*/; do runs+=("${d%/}"); done
  for task in math chat yesno; do ev "$o/$task.h5" "$T/$task-1shot.jsonl" "$task" --adapters "${runs[@]}"; done
  [ -e "$o/data/arith-1shot.jsonl" ] || /usr/bin/python3 "$HERE/../tools/general_sets.py" heldout "$SUITE" "$o/data" "$N_TEST"
  ev "$o/arith.h5" "$o/data/arith-1shot.jsonl" arith --base --adapters "${runs[@]}"
  echo "dmt bench: seed $s: $(($(date +%s) - t0)) s"
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP, $DTYPE)"
pack_evals
/usr/bin/python3 "$HERE/../tools/promot_dmt_table.py" dmt "$OUT"
