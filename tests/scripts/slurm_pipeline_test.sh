# The pipeline under a real one-node SLURM cluster (slurm/cluster-up.sh): slurm/demo.sbatch
# with 2 tasks runs `kmoe demo --profile tiny --tasks mc,yesno` under srun --mpi=pmix, so the
# suite, base model, bank and `kmoe run` of both tasks happen inside the job; every artifact
# of both run directories is complete and the table is in the job output. Then
# slurm/run.sbatch re-runs one task's pipeline from its generated config with --from eval:
# only eval and the report run again, and eval.h5 is complete again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../../slurm/cluster-test-lib.sh"

demo="$WORK/demo"
id=$(KMOE="$KMOE" sbatch --parsable -n 2 --time=10 --output="$WORK/demo-%j.out" \
  "$SLURM_DIR/demo.sbatch" --profile tiny --tasks mc,yesno --work-dir "$demo" --threads 1) || slurm_fail "sbatch demo"
job_wait "$id" 300
grep -q "full method (K-shot MoE)" "$WORK/demo-$id.out" || slurm_fail "no table in the job output"
"$PYTHON" - "$demo" <<'PY' || slurm_fail "demo artifacts from the SLURM job"
import json, sys, h5py
d = sys.argv[1]
r = json.load(open(d + "/demo_results.json"))
assert r["tasks"] == ["mc", "yesno"], r["tasks"]
for t in r["tasks"]:
    for a in ("scores", "experts", "embeddings", "data_selection", "moe", "eval"):
        with h5py.File("%s/runs/%s/draw0/%s.h5" % (d, t, a), "r") as f:
            assert f.attrs["complete"] == 1, (t, a)
            assert f.attrs["world_size"] == 2, (t, a, f.attrs["world_size"])
    run = json.load(open("%s/runs/%s/draw0/run.json" % (d, t)))
    assert run["status"] == "complete", run["status"]
PY

before=$(stat -c %Y "$demo/runs/mc/draw0/eval.h5")
id=$(KMOE="$KMOE" sbatch --parsable -n 2 --time=5 --output="$WORK/run-%j.out" \
  "$SLURM_DIR/run.sbatch" "$demo/runs/mc/draw0/run.ini" --from eval) || slurm_fail "sbatch run"
job_wait "$id" 120
grep -q "stage select-data: skipped" "$WORK/run-$id.out" || slurm_fail "run --from eval did not skip select-data"
grep -q "stage eval: ran" "$WORK/run-$id.out" || slurm_fail "run --from eval did not run eval"
[ "$(stat -c %Y "$demo/runs/mc/draw0/eval.h5")" -ge "$before" ] || slurm_fail "eval.h5 not rewritten"
"$PYTHON" -c 'import sys, h5py; assert h5py.File(sys.argv[1], "r").attrs["complete"] == 1' "$demo/runs/mc/draw0/eval.h5" ||
  slurm_fail "eval.h5 incomplete after run.sbatch"
echo ok
