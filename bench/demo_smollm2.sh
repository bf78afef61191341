#!/usr/bin/env bash
# The method on SmolLM2-135M-Instruct (issue 14): `kmoe demo --profile smollm2` under
# mpirun -np 2, one thread per rank, then the wall time of each step (bank, and per task and
# K-shot draw: pipeline, baselines' training, evaluation) from demo_results.json, and the
# tables. Resumable: run it again with the same WORK_DIR after a kill and it goes on where it
# stopped (the step times are then those of the last invocation; the first run's are in its
# log; a SIGTERM to mpirun gives the ranks 60 s, not Open MPI's 1 s, to checkpoint a training
# step). Extra arguments go to kmoe demo (e.g. --draws 1, --tables 1,2,3, --tasks mc).
# usage: bench/demo_smollm2.sh BUILD_DIR WORK_DIR [kmoe demo options...]
set -euo pipefail
BUILD=${1:?usage: bench/demo_smollm2.sh BUILD_DIR WORK_DIR [options]}
WORK=${2:?usage: bench/demo_smollm2.sh BUILD_DIR WORK_DIR [options]}
shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
start=$(date +%s)
mpirun -np 2 --mca odls_base_sigkill_timeout 60 "$BUILD/kmoe" demo --profile smollm2 --threads 1 --work-dir "$WORK" "$@"
echo "wall time of this invocation: $(($(date +%s) - start)) s ($(nproc) cores)"
/usr/bin/python3 - "$WORK/demo_results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("step seconds (this invocation; a step done earlier shows its skip):")
for s in r["steps"]:
    print("  %-48s %8.1f" % (s["step"], s["seconds"]))
PY
