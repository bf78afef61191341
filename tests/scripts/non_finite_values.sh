# Issue 11, item 6: NaN or inf never passes silently. A base model or an adapter holding a
# NaN is refused at load, naming the tensor (score --skip-bad-adapters skips the adapter
# with that reason); training that diverges stops at the step, naming the tensor, with exit
# 1, nothing under the output name and the last checkpoint kept; --lr nan/inf is refused.
source "$(dirname "$0")/lib.sh"
K() { "$KMOE" "$@"; }
K init-model --output "$WORK/model" --hidden 32 --layers 1 --heads 2 --kv-heads 1 --intermediate 64 2> "$WORK/err" \
  || { cat "$WORK/err"; fail "init-model"; }
"$PYTHON" - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
with open(f"{w}/add.jsonl", "w") as f:
    for i in range(8):
        f.write(json.dumps({"instruction": f"{i} + 2 =", "output": str(i + 2)}) + "\n")
with open(f"{w}/kshot.jsonl", "w") as f:
    for i in range(4):
        f.write(json.dumps({"id": f"k{i}", "question": f"{i} + 3 =", "answer": str(i + 3)}) + "\n")
PY
poison() {  # poison FILE.safetensors VALUE: the first element of the first F32 tensor becomes VALUE
  "$PYTHON" - "$1" "$2" <<'PY'
import json, struct, sys
path, value = sys.argv[1], float(sys.argv[2])
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name = sorted(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")[0]
begin = 8 + n + header[name]["data_offsets"][0]
data[begin:begin + 4] = struct.pack("<f", value)
open(path, "wb").write(bytes(data))
print(name)
PY
}
train=(train --model "$WORK/model" --data "$WORK/add.jsonl" --global-batch 4 --micro-batch 4 --threads 1)
K bank build --model "$WORK/model" --data "$WORK/add.jsonl" --max-steps 2 --global-batch 4 --micro-batch 4 --threads 1 \
  --output-dir "$WORK/bank" 2> "$WORK/err" || { cat "$WORK/err"; fail "bank build"; }
cp -r "$WORK/bank/add" "$WORK/bank/nan"
bad=$(poison "$WORK/bank/nan/adapter_model.safetensors" nan)
score=(score --model "$WORK/model" --bank "$WORK/bank" --kshot "$WORK/kshot.jsonl" --answer-format exact
       --max-new-tokens 2 --threads 1)
set +e; K "${score[@]}" --output "$WORK/s.h5" 2> "$WORK/err"; rc=$?; set -e
[ $rc = 1 ] || { cat "$WORK/err"; fail "a NaN adapter was scored (exit $rc)"; }
grep -q "tensor '$bad' holds non-finite values" "$WORK/err" || { cat "$WORK/err"; fail "the message does not name $bad"; }
[ ! -e "$WORK/s.h5" ] || fail "s.h5 written"
K "${score[@]}" --skip-bad-adapters --output "$WORK/s.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "skip-bad-adapters"; }
"$PYTHON" - "$WORK/s.h5" <<'PY' || fail "the NaN adapter is not skipped with its reason"
import sys, h5py
f = h5py.File(sys.argv[1])
names = [s.decode() for s in f["adapters"][()]]
i = names.index("nan")
assert f["skipped"][i] == 1, f["skipped"][()]
assert "non-finite" in f["skipped_reason"].asstr()[i], f["skipped_reason"].asstr()[i]
assert all(f["skipped"][j] == 0 for j in range(len(names)) if j != i)
PY
rm -r "$WORK/bank/nan"

cp -r "$WORK/model" "$WORK/inf_model"
bad=$(poison "$WORK/inf_model/model.safetensors" inf)
set +e; K score --model "$WORK/inf_model" --bank "$WORK/bank" --kshot "$WORK/kshot.jsonl" --answer-format exact \
  --threads 1 --output "$WORK/s2.h5" 2> "$WORK/err"; rc=$?; set -e
[ $rc = 1 ] && grep -q "tensor '$bad' holds non-finite values" "$WORK/err" || { cat "$WORK/err"; fail "an inf base model was used (exit $rc)"; }

for v in nan inf -inf; do
  set +e; K "${train[@]}" --max-steps 2 --lr $v --output "$WORK/x" 2> "$WORK/err"; rc=$?; set -e
  [ $rc = 2 ] && grep -q -- "--lr must be a finite number" "$WORK/err" || { cat "$WORK/err"; fail "--lr $v (exit $rc)"; }
done

# A learning rate that makes the weights blow up: training stops at the first non-finite
# loss or gradient, names it, keeps the step-1 checkpoint, writes no adapter.
set +e; K "${train[@]}" --max-steps 80 --lr 1e37 --max-grad-norm 0 --lr-decay constant --checkpoint-every 1 \
  --output "$WORK/diverged" 2> "$WORK/err"; rc=$?; set -e
[ $rc = 1 ] || { cat "$WORK/err"; fail "divergent training: exit $rc, expected 1"; }
grep -qE "training stopped at step [0-9]+: loss .*(gradient of '.*' is not finite|gradient norm is not finite)" "$WORK/err" \
  || { cat "$WORK/err"; fail "the stop message does not name the step and tensor"; }
grep -q "last good checkpoint is kept" "$WORK/err" || { cat "$WORK/err"; fail "no checkpoint kept"; }
[ -f "$WORK/diverged.ckpt.h5" ] || fail "the last good checkpoint was removed"
[ ! -e "$WORK/diverged" ] || fail "a diverged adapter was committed"
"$PYTHON" - "$WORK/diverged.ckpt.h5" <<'PY' || fail "the checkpoint holds non-finite weights"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
bad = []
f.visititems(lambda n, d: bad.append(n) if isinstance(d, h5py.Dataset) and d.dtype.kind == "f" and not np.all(np.isfinite(d[()])) else None)
assert not bad, bad
PY
# A diverging mixture keeps its checkpoint too (with the router load in /extra).
cp -r "$WORK/bank/add" "$WORK/add2"
set +e; K train --mode moe --model "$WORK/model" --adapters "$WORK/bank/add" "$WORK/add2" --data "$WORK/add.jsonl" --global-batch 4 \
  --micro-batch 4 --threads 1 --max-steps 80 --lr 1e37 --max-grad-norm 0 --lr-decay constant --checkpoint-every 1 \
  --output "$WORK/diverged_moe.h5" 2> "$WORK/err"; rc=$?; set -e
[ $rc = 1 ] && [ -f "$WORK/diverged_moe.h5.ckpt.h5" ] || { cat "$WORK/err"; fail "divergent MoE: exit $rc, no checkpoint kept"; }

# Issue 17: the checkpoints (the one artifact kind the demo does not leave), the scores with
# a skipped row and the bank have the layout docs/artifacts.json describes.
root=$(cd "$(dirname "$0")/../.." && pwd)
"$PYTHON" "$root/tests/tools/check_artifacts.py" "$root/docs/artifacts.json" "$WORK/diverged.ckpt.h5" \
  "$WORK/diverged_moe.h5.ckpt.h5" "$WORK/s.h5" "$WORK/bank/bank.h5" --require OUTPUT.ckpt.h5 ||
  fail "an artifact differs from docs/artifacts.json"
"$PYTHON" - "$WORK/diverged_moe.h5.ckpt.h5" <<'PY' || fail "the MoE checkpoint has no router load in /extra"
import sys, h5py
f = h5py.File(sys.argv[1])
assert list(f["extra_names"].asstr()[:]) == ["router_load_by_source"], f["extra_names"][()]
assert f["extra/router_load_by_source"].attrs["float64_bits"] == 1
PY
echo "ok"
