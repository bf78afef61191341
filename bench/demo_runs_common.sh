# Sourced by the benches that start from a `kmoe demo --profile smollm2` work directory's runs
# (bench/promot_moe_smollm2.sh, bench/selected_lora_smollm2.sh) after they set DEMO and NP.
# TAG (default none): the `kmoe demo --sizes` run to start from, e.g. TAG=c=256 reads
# DEMO/runs_c=256 and DEMO/demo_c=256_results.json instead of DEMO/runs and DEMO/demo_results.json.
RUNS=runs${TAG:+_$TAG} RESULTS=demo${TAG:+_$TAG}_results.json
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run() { mpirun --oversubscribe -np "$NP" "$BUILD/kmoe" "$@"; }
ini_key() { sed -n "s|^$2 = ||p" "$1" | head -1; }  # RUN_INI KEY: a top-level key of a run's config
ini_train_key() { sed -n '/^\[train\]/,/^\[/p' "$1" | sed -n "s|^$2 = ||p" | head -1; }  # one of [train]
best_adapter() {  # TASK DRAW: the demo's best bank adapter by K-shot score on that run (as the demo
  # reads it: experts.h5's candidate with the lowest rank R), or an error naming the file
  /usr/bin/python3 - "$DEMO/$RUNS/$1/draw$2/experts.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    paths, rank = list(f["candidate_paths"].asstr()[:]), f["R"][()]
if not paths or len(rank) != len(paths):
    sys.exit(f"{sys.argv[1]}: no candidates")
print(paths[int(np.argmin(rank))])
PY
}
eval_args() {  # RUN_INI TASK: sets ev to the run's kmoe eval (model, test set, formats), no output
  ev=(eval --model "$(ini_key "$1" model)" --test "$(ini_key "$1" test)" --task "$2"
      --prompt-format "$(ini_key "$1" prompt-format)" --answer-format "$(ini_key "$1" answer-format)"
      --max-new-tokens "$(ini_key "$1" max-new-tokens)" --threads 1)
  [ -z "$(ini_key "$1" answer-regex)" ] || ev+=(--answer-regex "$(ini_key "$1" answer-regex)")
}
