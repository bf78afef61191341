# `kmoe info` under mpirun -np 1, 2 and 3 reports the world it runs in.
source "$(dirname "$0")/lib.sh"
for np in 1 2 3; do
  mpi -np "$np" "$KMOE" info --json > "$WORK/info$np.json"
  "$PYTHON" - "$WORK/info$np.json" "$np" <<'PY'
import json, socket, sys
info = json.load(open(sys.argv[1])); np = int(sys.argv[2])
mpi = info["mpi"]
assert mpi["world_size"] == np, mpi
assert mpi["node_count"] == 1 and mpi["ranks_per_node"] == [np], mpi
assert mpi["nodes"][0]["ranks"] == list(range(np)), mpi
assert mpi["nodes"][0]["host"] == socket.gethostname(), mpi
assert info["hdf5"]["parallel"] is True, info["hdf5"]
assert info["libtorch"]["version"].count(".") == 2, info["libtorch"]
assert info["kmoe"]["version"] and info["kmoe"]["git_revision"], info["kmoe"]
# kmoe sets GOMP_SPINCOUNT=3000 for itself when no spin setting is given (model/cpu_threads.h)
assert info["cpu"]["gomp_spincount"] == "3000" and info["cpu"]["omp_wait_policy"] == "unset", info["cpu"]
assert info["process_name"] == "kmoe", info["process_name"]  # re-executed under its own name (ps, pkill)
assert info["cpu"]["bf16_instructions"] == ("avx512_bf16" in open("/proc/cpuinfo").read()
                                            or "amx_bf16" in open("/proc/cpuinfo").read()), info["cpu"]
PY
done
# A user's own policy is kept.
OMP_WAIT_POLICY=active "$KMOE" info --json > "$WORK/info_active.json"
"$PYTHON" -c 'import json,sys; c=json.load(open(sys.argv[1]))["cpu"]; assert c["omp_wait_policy"] == "active" and c["gomp_spincount"] == "unset", c' \
  "$WORK/info_active.json" || fail "OMP_WAIT_POLICY=active not kept"
# OpenBLAS's kernels fit the CPU, also where OpenBLAS alone would pick poor ones (a hypervisor's
# CPU model it does not know: kmoe re-executes itself with OPENBLAS_CORETYPE, runtime/cpu_env.h;
# ctest sets one for every test, so it is removed here). A user's own OPENBLAS_CORETYPE is kept.
env -u OPENBLAS_CORETYPE "$KMOE" info --json > "$WORK/info_blas.json"
OPENBLAS_CORETYPE=Haswell "$KMOE" info --json > "$WORK/info_haswell.json"
"$PYTHON" - "$WORK/info_blas.json" "$WORK/info_haswell.json" <<'PY' || fail "OpenBLAS kernels"
import json, sys
c, h = (json.load(open(f))["cpu"] for f in sys.argv[1:])
if c["openblas_core"]:  # "" : libtorch without OpenBLAS
    assert c["openblas_kernels_fit_cpu"] is True, c
    # kmoe set OPENBLAS_CORETYPE exactly when OpenBLAS had chosen something else
    assert (c["openblas_coretype"] != "unset") == (c["openblas_core_detected"] != c["openblas_core"]), c
    assert h["openblas_coretype"] == "Haswell" and h["openblas_core"] == "Haswell", h
    print("OpenBLAS:", c["openblas_core"], "detected:", c["openblas_core_detected"])
PY
# Text form, as a user reads it.
mpi -np 3 "$KMOE" info > "$WORK/info.txt"
grep -q "world size 3, 1 node(s), ranks per node: 3" "$WORK/info.txt" || fail "text: $(cat "$WORK/info.txt")"
[ "$(grep -c '^kmoe ' "$WORK/info.txt")" -eq 1 ] || fail "printed by more than rank 0"
# CUDA versions as people write them ("13.0"), not CUDA's integers (13000).
if "$PYTHON" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["cuda"]["compiled"] else 1)' "$WORK/info1.json"; then
  grep -Eq '^CUDA [0-9]+\.[0-9]+ \(linked\), driver ([0-9]+\.[0-9]+|none)' "$WORK/info.txt" || fail "CUDA versions: $(grep CUDA "$WORK/info.txt")"
  ! grep -Eq 'CUDA[^,]* [0-9]{4,}' "$WORK/info.txt" || fail "CUDA version integer printed: $(grep CUDA "$WORK/info.txt")"
fi
# Inside a SLURM job it reports the job (values from the environment srun sets).
SLURM_JOB_ID=4242 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=2 SLURM_JOB_NODELIST=n1 SLURM_JOB_PARTITION=debug \
  "$KMOE" info | grep -q "SLURM: job 4242, 1 node(s) (n1), 2 task(s)" || fail "SLURM job not reported"
cat "$WORK/info.txt"
