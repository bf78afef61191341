# slurm/train.sbatch on a real one-node cluster: `kmoe train` with 2 tasks gets USR1 after
# its first checkpoint (as --signal=USR1@120 delivers it before the time limit), checkpoints
# and exits 75, the script requeues the job, and the requeued run logs "resuming from step N"
# and finishes with the same adapter and loss curve as an uninterrupted mpirun -np 2 run.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
source "$(dirname "$0")/../../slurm/cluster-test-lib.sh"

D="$KMOE_PARITY_DIR/scoring"
args=(--mode lora --model "$D/model" --data "$D/kshot.jsonl" --global-batch 2 --micro-batch 1
      --max-steps 24 --checkpoint-every 4 --lora-r 4 --lora-dropout 0 --lr 1e-3 --seed 3 --threads 1)
mpi -np 2 "$KMOE" train "${args[@]}" --output "$WORK/ref" 2> ref.err || { cat ref.err; fail "uninterrupted run"; }

# Slow steps (KMOE_TEST_STEP_DELAY_MS) leave time to signal the job mid-run.
id=$(KMOE="$KMOE" KMOE_TEST_STEP_DELAY_MS=250 sbatch --parsable -n 2 --time=5 \
  --output="$WORK/train-%j.out" "$SLURM_DIR/train.sbatch" "${args[@]}" --output "$WORK/job") || slurm_fail "sbatch"
file_wait "$WORK/job.ckpt.h5" "$id" 60  # the first checkpoint
scancel --signal=USR1 "$id" || slurm_fail "scancel --signal=USR1"
job_wait "$id" 100

log="$WORK/train-$id.out"
grep -q "exit code 75" "$log" || slurm_fail "the first run did not stop with exit code 75"
step=$(sed -n 's/.*resuming from step \([0-9]*\) of 24.*/\1/p' "$log" | head -n 1)
if ! [[ $step =~ ^[0-9]+$ ]] || ((step == 0 || step >= 24)); then slurm_fail "no 'resuming from step N' in $log"; fi
scontrol show job "$id" | grep -q "Restarts=1" || slurm_fail "the job was not requeued once"
[ ! -e "$WORK/job.ckpt.h5" ] || fail "checkpoint left after the finished run"
cmp "$WORK/ref/adapter_model.safetensors" "$WORK/job/adapter_model.safetensors" ||
  slurm_fail "the resumed adapter differs from the uninterrupted one"
"$PYTHON" - "$WORK/ref/train.h5" "$WORK/job/train.h5" "$step" <<'PY' || slurm_fail "train.h5"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert b.attrs["resumed_from_step"] == int(sys.argv[3]), dict(b.attrs)
assert np.array_equal(a["metrics/step"][()], b["metrics/step"][()])
assert np.array_equal(a["metrics/loss"][()], b["metrics/loss"][()]), (a["metrics/loss"][()], b["metrics/loss"][()])
PY
echo "ok: resumed from step $step"
