# `kmoe train --mode lora` on the tiny model: np = 1 and np = 2 with the same global batch
# give the same per-step losses (1e-5) and close adapters, the loss falls on a learnable
# mapping; a run killed with SIGKILL after a checkpoint, and runs stopped by SIGUSR1 /
# SIGTERM (exit 75), resume to the uninterrupted run's adapter byte for byte; a resume
# with another --lr is refused naming the option.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?}"
"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
args=(train --model "$WORK/model" --data "$WORK/data/alpaca.jsonl" "$WORK/data/kshot.jsonl"
      --global-batch 8 --lr 5e-2 --max-steps 16 --warmup-steps 2 --lora-dropout 0
      --lora-r 4 --lora-alpha 8 --lora-targets q_proj,v_proj,o_proj,down_proj --seed 3 --threads 1 --log-every 1)

mpi -np 1 "$KMOE" "${args[@]}" --micro-batch 4 --output "$WORK/a1" 2> "$WORK/err1" || { cat "$WORK/err1"; fail "np=1"; }
mpi -np 2 "$KMOE" "${args[@]}" --micro-batch 3 --output "$WORK/a2" 2> "$WORK/err2" || { cat "$WORK/err2"; fail "np=2"; }
grep -q "24 examples from 24 records" "$WORK/err1" || fail "example count: $(cat "$WORK/err1")"
[ ! -e "$WORK/a1.ckpt.h5" ] || fail "checkpoint left after a finished run"

"$PYTHON" - "$WORK/a1" "$WORK/a2" <<'PY' || fail "np=1 and np=2 differ"
import sys, json, struct, numpy as np, h5py
def tensors(d):
    raw = open(d + "/adapter_model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(v["shape"])
    return out
l1 = h5py.File(sys.argv[1] + "/train.h5")["metrics/loss"][()]
l2 = h5py.File(sys.argv[2] + "/train.h5")["metrics/loss"][()]
f = h5py.File(sys.argv[1] + "/train.h5")
assert list(f["metrics/step"][()]) == list(range(1, 17)), f["metrics/step"][()]
assert f["metrics/lr"][0] == 0 and f["metrics/lr"][1] > 0 and f["metrics/lr"][-1] < f["metrics/lr"][2], f["metrics/lr"][()]
assert np.all(f["metrics/grad_norm"][()] > 0) and np.all(f["metrics/tokens_per_s"][()] > 0)
assert np.max(np.abs(l1 - l2)) < 1e-5, (l1, l2)
assert l1[-1] < 0.5 * l1[0], ("loss did not fall", l1)
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert sorted(a) == sorted(b) and len(a) == 2 * 4 * 2, sorted(a)
for k in a: assert np.allclose(a[k], b[k], atol=1e-4), (k, np.abs(a[k] - b[k]).max())
cfg = json.load(open(sys.argv[1] + "/adapter_config.json"))
assert cfg["r"] == 4 and sorted(cfg["target_modules"]) == ["down_proj", "o_proj", "q_proj", "v_proj"], cfg
PY

# SIGKILL after a checkpoint exists, then the same command: identical adapter bytes.
KMOE_TEST_STEP_DELAY_MS=300 "$KMOE" "${args[@]}" --micro-batch 4 --checkpoint-every 3 --output "$WORK/k" 2> "$WORK/errk" &
pid=$!
for _ in $(seq 600); do [ -e "$WORK/k.ckpt.h5" ] && break; sleep 0.1; done
[ -e "$WORK/k.ckpt.h5" ] || { kill -9 $pid; fail "no checkpoint appeared: $(cat "$WORK/errk")"; }
kill -9 $pid; wait $pid && fail "the killed run exited 0" || true
[ ! -e "$WORK/k/train.h5" ] || fail "the killed run finished before the kill"
"$KMOE" "${args[@]}" --micro-batch 4 --checkpoint-every 3 --output "$WORK/k" 2> "$WORK/errk2" || { cat "$WORK/errk2"; fail "resume after kill"; }
grep -q "resuming from step [1-9]" "$WORK/errk2" || fail "no resume line: $(cat "$WORK/errk2")"
cmp "$WORK/a1/adapter_model.safetensors" "$WORK/k/adapter_model.safetensors" || fail "resumed after SIGKILL differs"

# SIGUSR1 and SIGTERM: exit 75 with a checkpoint; another --lr is refused; the same resumes.
for sig in USR1 TERM; do
  out="$WORK/s$sig"
  KMOE_TEST_STEP_DELAY_MS=300 "$KMOE" "${args[@]}" --micro-batch 4 --output "$out" 2> "$WORK/err$sig" &
  pid=$!
  for _ in $(seq 600); do grep -q "step 2/16" "$WORK/err$sig" && break; sleep 0.1; done
  kill -$sig $pid
  set +e; wait $pid; rc=$?; set -e
  [ $rc -eq 75 ] || fail "SIG$sig: exit $rc, not 75: $(cat "$WORK/err$sig")"
  [ -e "$out.ckpt.h5" ] || fail "SIG$sig: no checkpoint"
  grep -q "exit code 75" "$WORK/err$sig" || fail "SIG$sig: no stop line"
  bad=("${args[@]/5e-2/2e-2}")
  set +e; "$KMOE" "${bad[@]}" --micro-batch 4 --output "$out" 2> "$WORK/errlr"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "resume with another --lr was accepted"
  grep -q "refusing to resume" "$WORK/errlr" && grep -q "lr" "$WORK/errlr" || fail "refusal message: $(cat "$WORK/errlr")"
  "$KMOE" "${args[@]}" --micro-batch 4 --output "$out" 2> "$WORK/errr$sig" || { cat "$WORK/errr$sig"; fail "resume after SIG$sig"; }
  grep -q "resuming from step" "$WORK/errr$sig" || fail "SIG$sig: no resume line"
  cmp "$WORK/a1/adapter_model.safetensors" "$out/adapter_model.safetensors" || fail "resumed after SIG$sig differs"
done

# A finished output is skipped on a re-run.
mpi -np 1 "$KMOE" "${args[@]}" --micro-batch 4 --output "$WORK/a1" 2> "$WORK/err3"
grep -q "skipping" "$WORK/err3" || fail "a complete output was not skipped"
"$KMOE" train --help > "$WORK/help"; grep -q "code 75" "$WORK/help" || fail "--help does not document exit code 75"
echo "ok"
