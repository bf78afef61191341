# A real one-node SLURM cluster (slurm/cluster-up.sh): `srun --mpi=pmix` gives kmoe an MPI
# world of 2, and slurm/score.sbatch with 2 tasks scores the tiny scoring model's bank into a
# complete scores.h5, the same as mpirun -np 1 gives.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
source "$(dirname "$0")/../../slurm/cluster-test-lib.sh"

timeout 60 srun -n 2 --mpi=pmix "$KMOE" info --json > info.json || slurm_fail "srun kmoe info"
"$PYTHON" -c 'import json, sys; m = json.load(open("info.json"))["mpi"]; assert m["world_size"] == 2, m' ||
  slurm_fail "world size under srun: $(cat info.json)"

D="$KMOE_PARITY_DIR/scoring"
args=(--model "$D/model" --bank "$D/adapters" --kshot "$D/kshot.jsonl" --answer-format exact
      --max-new-tokens 3 --chunk-size 2 --batch-size 2 --threads 1)
id=$(KMOE="$KMOE" sbatch --parsable -n 2 --time=5 --output="$WORK/score-%j.out" \
  "$SLURM_DIR/score.sbatch" "${args[@]}" --output "$WORK/scores.h5") || slurm_fail "sbatch"
job_wait "$id" 90
[ ! -e "$WORK/scores.h5.units" ] || slurm_fail "journal left after the job"
grep -q "16 units" "$WORK/score-$id.out" || slurm_fail "no unit count in the job output"
mpi -np 1 "$KMOE" score "${args[@]}" --output "$WORK/ref.h5" 2> ref.err || { cat ref.err; fail "mpirun score"; }
"$PYTHON" - "$WORK/scores.h5" "$WORK/ref.h5" <<'PY' || slurm_fail "scores.h5 from the SLURM job"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["complete"] == 1, dict(a.attrs)
assert sorted(a.keys()) == sorted(b.keys())
for k in a.keys():
    assert a[k][()].tobytes() == b[k][()].tobytes(), k
assert [s.decode() for s in a["adapters"][()]] == ["base", "a_qv", "b_all", "c_mlp"]
PY
echo ok
