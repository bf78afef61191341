# `kmoe train --mode moe` on the tiny model: a mixture of two bank adapters trained on both
# tasks writes moe.h5 (the mixture, /metrics, /router_load [keys, 2]: the routing weight of
# every real token, which top-k 1 makes a count, and /router_load_by_source [2, keys, 2] per
# --data file); np = 1 and np = 2 give the same losses and loads; adapters of different rank
# are refused naming the rank.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?}"
"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" "$(dirname "$0")/train_data.py" "$WORK/data"
common=(--model "$WORK/model" --global-batch 4 --micro-batch 2 --threads 1 --lora-dropout 0 --seed 1)
mpi -np 2 "$KMOE" bank build "${common[@]}" --data "$WORK/data/task0.jsonl" "$WORK/data/task1.jsonl" \
  --output-dir "$WORK/bank" --max-steps 4 --lora-r 4 --lr 5e-2 2> "$WORK/errb" || { cat "$WORK/errb"; fail "bank"; }
moe=(train --mode moe "${common[@]}" --adapters "$WORK/bank/task0" "$WORK/bank/task1"
     --data "$WORK/data/task0.jsonl" "$WORK/data/task1.jsonl" --max-steps 5 --lr 1e-2 --top-k 1 --aux-loss-coef 0.01)
mpi -np 1 "$KMOE" "${moe[@]}" --output "$WORK/m1.h5" 2> "$WORK/err1" || { cat "$WORK/err1"; fail "moe np=1"; }
mpi -np 2 "$KMOE" "${moe[@]}" --output "$WORK/m2.h5" 2> "$WORK/err2" || { cat "$WORK/err2"; fail "moe np=2"; }
"$PYTHON" - "$WORK/m1.h5" "$WORK/m2.h5" "$WORK/data" <<'PY' || fail "moe.h5"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
assert np.max(np.abs(a["metrics/loss"][()] - b["metrics/loss"][()])) < 1e-5, (a["metrics/loss"][()], b["metrics/loss"][()])
load = a["router_load"][()]
keys = [k.decode() for k in a["moe/keys"][()]]
assert load.shape == (len(keys), 2) == (4, 2), (load.shape, keys)
# top-k 1: every real token of every forward is assigned once per adapted module
assert np.allclose(load.sum(1), load.sum(1)[0]) and load.sum() > 0, load
assert np.allclose(load, b["router_load"][()]), (load, b["router_load"][()])
by = a["router_load_by_source"][()]
assert by.shape == (2, 4, 2) and np.allclose(by.sum(0), load), (by, load)
assert np.allclose(by, b["router_load_by_source"][()])
assert [s.decode() for s in a["sources"][()]] == [sys.argv[3] + "/task0.jsonl", sys.argv[3] + "/task1.jsonl"]
# every module sees the tokens of each file
assert np.allclose(by.sum(2), by.sum(2)[:, :1]) and np.all(by.sum(2) > 0), by
assert list(a["metrics/step"][()]) == [1, 2, 3, 4, 5]
PY
# --expert-lr-scale: one AdamW step from the same start moves each expert by the scale times
# what it moves at one lr (weight decay is lr-proportional too), and each router the same.
one=(train --mode moe "${common[@]}" --adapters "$WORK/bank/task0" "$WORK/bank/task1" --data "$WORK/data/task0.jsonl"
     --max-steps 1 --lr 1e-2)
mpi -np 1 "$KMOE" "${one[@]}" --output "$WORK/s1.h5" 2> "$WORK/err5" || { cat "$WORK/err5"; fail "moe scale 1"; }
mpi -np 1 "$KMOE" "${one[@]}" --expert-lr-scale 0.25 --output "$WORK/s4.h5" 2> "$WORK/err5" ||
  { cat "$WORK/err5"; fail "moe --expert-lr-scale 0.25"; }
"$PYTHON" - "$WORK/s1.h5" "$WORK/s4.h5" "$WORK/bank" <<'PY' || fail "--expert-lr-scale"
import json, struct, sys, h5py, numpy as np
def safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"])
            for k, v in head.items() if k != "__metadata__"}
one, quarter = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
assert "expert_lr_scale" not in json.loads(one.attrs["options"]), one.attrs["options"]
assert json.loads(quarter.attrs["options"])["expert_lr_scale"] == 0.25, quarter.attrs["options"]
bank = [safetensors("%s/%s/adapter_model.safetensors" % (sys.argv[3], n)) for n in ("task0", "task1")]
moved = 0
for key in one["moe/keys"].asstr()[()]:
    _, layer, module = key.split(".")
    r1, r4 = one["moe/%s/router" % key][()], quarter["moe/%s/router" % key][()]
    assert np.allclose(r1, r4, rtol=0, atol=1e-6), key
    for w in ("A", "B"):
        for e in range(2):
            start = [v for k, v in bank[e].items() if ".layers.%s." % layer in k and ".%s.lora_%s" % (module, w) in k]
            assert len(start) == 1, (key, w, e)
            d1 = one["moe/%s/lora_%s" % (key, w)][e] - start[0]
            d4 = quarter["moe/%s/lora_%s" % (key, w)][e] - start[0]
            assert np.abs(d1).max() > 1e-3, (key, w, e)
            assert np.allclose(d4, 0.25 * d1, rtol=0, atol=2e-6 + 1e-3 * np.abs(d1).max()), (key, w, e)
            moved += 1
print("expert-lr-scale: %d expert tensors moved by a quarter" % moved)
PY
set +e
mpi -np 1 "$KMOE" "${one[@]}" --routers-only --expert-lr-scale 0.5 --output "$WORK/bad2.h5" 2> "$WORK/err6"; rc=$?
mpi -np 1 "$KMOE" train "${common[@]}" --data "$WORK/data/task0.jsonl" --max-steps 1 --expert-lr-scale 0.5 \
  --output "$WORK/bad3" 2> "$WORK/err7"; rc2=$?
set -e
[ $rc -ne 0 ] && grep -q "routers-only" "$WORK/err6" || fail "--expert-lr-scale with --routers-only: $(cat "$WORK/err6")"
[ $rc2 -ne 0 ] && grep -q "is for --mode moe" "$WORK/err7" || fail "--expert-lr-scale with lora: $(cat "$WORK/err7")"
mpi -np 1 "$KMOE" train "${common[@]}" --data "$WORK/data/task2.jsonl" --max-steps 1 --lora-r 2 \
  --output "$WORK/r2" 2> "$WORK/err3" || { cat "$WORK/err3"; fail "r2 adapter"; }
set +e
mpi -np 1 "$KMOE" train --mode moe "${common[@]}" --adapters "$WORK/bank/task0" "$WORK/r2" \
  --data "$WORK/data/task0.jsonl" --max-steps 1 --output "$WORK/bad.h5" 2> "$WORK/err4"; rc=$?
set -e
[ $rc -ne 0 ] || fail "a mixture of rank 4 and rank 2 adapters was accepted"
grep -q "r = 2" "$WORK/err4" || fail "the refusal does not name the rank: $(cat "$WORK/err4")"
[ ! -e "$WORK/bad.h5" ] || fail "a refused mixture left moe.h5"
echo "ok"
