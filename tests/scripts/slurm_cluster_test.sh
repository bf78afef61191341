# A real one-node SLURM cluster (slurm/cluster-up.sh): `srun --mpi=pmix` gives kmoe an MPI
# world of 2, and slurm/score.sbatch with 2 tasks scores the tiny scoring model's bank into a
# complete scores.h5, the same as mpirun -np 1 gives; slurm/panda.sbatch likewise for PANDA's
# insights.h5. cluster-up.sh over a live cluster (a
# killed test) replaces it, and a stale pid file naming another process leaves that alone.
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

# PANDA's insight pool from slurm/panda.sbatch with 2 tasks: the same as mpirun -np 1 gives.
pargs=(--expert-model "$D/model" --expert-adapter "$D/adapters/b_all" --llm "$D/model" --data "$D/kshot.jsonl"
       --encoder decoder --encoder-model "$D/model" --answer-format exact --max-new-tokens 3
       --max-insight-tokens 6 --chunk-size 2 --batch-size 2 --threads 1)
id=$(KMOE="$KMOE" sbatch --parsable -n 2 --time=5 --output="$WORK/panda-%j.out" \
  "$SLURM_DIR/panda.sbatch" "${pargs[@]}" --output "$WORK/insights.h5") || slurm_fail "sbatch panda"
job_wait "$id" 90
mpi -np 1 "$KMOE" panda learn "${pargs[@]}" --output "$WORK/insights_ref.h5" 2> pref.err ||
  { cat pref.err; fail "mpirun panda learn"; }
"$PYTHON" - "$WORK/insights.h5" "$WORK/insights_ref.h5" <<'PY' || slurm_fail "insights.h5 from the SLURM job"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["complete"] == 1 and sorted(a.keys()) == sorted(b.keys()), dict(a.attrs)
for k in a.keys():
    assert a[k][()].tobytes() == b[k][()].tobytes(), k
assert int(a.attrs["world_size"]) == 2, dict(a.attrs)
PY

# A leftover cluster (a killed test): up again over it replaces it.
old=$(cat "$WORK/slurm/slurmctld.pid")
"$SLURM_DIR/cluster-up.sh" "$WORK/slurm" > /dev/null || slurm_fail "cluster-up over a leftover cluster"
! kill -0 "$old" 2> /dev/null || slurm_fail "the old slurmctld $old still runs"
timeout 60 srun -n 1 true || slurm_fail "srun on the replaced cluster"
# Stale pid files naming an unrelated process (a reused pid): cluster-down leaves it alone.
"$SLURM_DIR/cluster-down.sh" "$WORK/slurm"
sleep 300 &
bystander=$!
for f in slurmd.pid slurmctld.pid munge/munged.pid; do echo "$bystander" > "$WORK/slurm/$f"; done
"$SLURM_DIR/cluster-down.sh" "$WORK/slurm"
kill -0 "$bystander" 2> /dev/null || fail "cluster-down ended a process that was not its own"
kill "$bystander"
[ ! -e "$WORK/slurm/slurmd.pid" ] || fail "stale pid file left"
echo ok
