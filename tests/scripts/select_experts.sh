# kmoe select-experts on a synthetic scores.h5 and a bank whose weight deltas have known
# cosines: the chosen experts, the ablation switches, experts.h5 read by h5py, and errors.
source "$(dirname "$0")/lib.sh"
"$PYTHON" - "$WORK" <<'PY'
import json, os, struct, sys
import h5py, numpy as np
work = sys.argv[1]
def save_adapter(d, v, u, r=1, module="q_proj", layers=1):
    # ΔW = B A with B = v [out, 1], A = u [1, in]: cos(ΔW_i, ΔW_j) = cos(v_i, v_j) for shared u.
    os.makedirs(d, exist_ok=True)
    json.dump({"peft_type": "LORA", "r": r, "lora_alpha": r, "target_modules": [module],
               "task_type": "CAUSAL_LM"}, open(os.path.join(d, "adapter_config.json"), "w"))
    tensors = {}
    for l in range(layers):
        key = f"base_model.model.model.layers.{l}.self_attn.{module}"
        tensors[key + ".lora_A.weight"] = np.asarray(u, np.float32).reshape(1, -1)
        tensors[key + ".lora_B.weight"] = np.asarray(v, np.float32).reshape(-1, 1)
    header, data, off = {}, b"", 0
    for k in sorted(tensors):
        b = tensors[k].tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        data += b; off += len(b)
    h = json.dumps(header).encode()
    with open(os.path.join(d, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
e = np.eye(8)
u = np.arange(1, 9, dtype=np.float64)
vs = {"a0": e[0], "a1": e[0] + 0.1 * e[1], "a2": e[2], "a3": e[3] + 0.5 * e[0], "a4": e[4], "a5": e[5]}
for name, v in vs.items():
    save_adapter(os.path.join(work, "bank", name), v, u)
save_adapter(os.path.join(work, "bank", "wide"), np.ones(16), np.ones(8))
names = ["base", "a0", "a1", "a2", "a3", "a4", "a5"]
paths = [""] + ["bank/" + n for n in names[1:]]  # relative to scores.h5's folder
acc = [0.1, 0.9, 0.85, 0.8, 0.7, 0.3, 1.0]
ppl = [50, 10, 11, 12, 13, 20, 1]
skipped = [0, 0, 0, 0, 0, 0, 1]
def write_scores(path, drop=None, names=names, paths=paths):
    with h5py.File(path, "w") as f:
        s = h5py.string_dtype()
        f.create_dataset("adapters", data=np.array(names, dtype=object), dtype=s)
        f.create_dataset("adapter_paths", data=np.array(paths, dtype=object), dtype=s)
        f.create_dataset("acc", data=np.array(acc, np.float32))
        f.create_dataset("ppl_sum", data=np.array(ppl, np.float32))
        f.create_dataset("skipped", data=np.array(skipped, np.int64))
        if drop: del f[drop]
write_scores(os.path.join(work, "scores.h5"))
write_scores(os.path.join(work, "noppl.h5"), drop="ppl_sum")
write_scores(os.path.join(work, "wide.h5"), names=names[:4] + ["wide"] + names[5:], paths=paths[:4] + ["bank/wide"] + paths[5:])
PY

mpi -np 2 "$KMOE" select-experts --scores "$WORK/scores.h5" --m 4 --n 2 --output "$WORK/experts.h5" > "$WORK/table.txt"
cat "$WORK/table.txt"
grep -q "^a0 .*\*$" "$WORK/table.txt" && grep -q "^a2 .*\*$" "$WORK/table.txt" || fail "table does not mark a0 and a2"
"$KMOE" select-experts --scores "$WORK/scores.h5" --m 4 --n 2 --no-diversity --output "$WORK/nodiv.h5" > /dev/null
"$KMOE" select-experts --scores "$WORK/scores.h5" --m 2 --n 2 --signals perplexity --output "$WORK/ppl.h5" > /dev/null
"$PYTHON" - "$WORK" <<'PY'
import json, sys
import h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/experts.h5", "r") as f:
    assert list(f["candidates"].asstr()[:]) == ["a0", "a1", "a2", "a3"], f["candidates"][:]
    assert list(f["R_P"][:]) == [1, 2, 3, 4] and list(f["R_A"][:]) == [1, 2, 3, 4]
    assert list(f["all_R_P"][:]) == [-1, 1, 2, 3, 4, 5, -1], f["all_R_P"][:]  # base and skipped a5: -1
    c = f["cosine"][:]
    assert c.shape == (4, 4) and np.allclose(np.diag(c), 1)
    assert abs(c[0, 1] - 1 / np.sqrt(1.01)) < 1e-6 and abs(c[0, 2]) < 1e-7 and abs(c[0, 3] - 0.5 / np.sqrt(1.25)) < 1e-6
    assert f["subsets"].shape == (6, 2) and f["subsets"].dtype == np.int64
    assert [list(r) for r in f["subsets"][:]] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert list(f["subset_R_D"][:]) == [6, 1, 5, 2, 4, 3], f["subset_R_D"][:]
    assert list(f["subset_score"][:]) == [12, 9, 15, 12, 16, 17], f["subset_score"][:]
    assert abs(f["subset_omega"][0] - 1 / c[0, 1]) < 1e-5 and np.isinf(f["subset_omega"][1])
    assert list(f["chosen"][:]) == [0, 2] and list(f["chosen_names"].asstr()[:]) == ["a0", "a2"]
    assert f["chosen_paths"].asstr()[1].endswith("bank/a2")
    a = f.attrs
    assert a["m"] == 4 and a["n"] == 2 and a["signals"] == "both" and a["diversity"] == 1 and a["complete"] == 1
    assert a["stage"] == "select-experts" and a["world_size"] == 2
    roles = [i["name"] for i in json.loads(a["inputs"])]
    assert roles == ["scores", "adapter:a0", "adapter:a1", "adapter:a2", "adapter:a3"], roles
with h5py.File(w + "/nodiv.h5", "r") as f:
    assert list(f["chosen_names"].asstr()[:]) == ["a0", "a1"] and f.attrs["diversity"] == 0
with h5py.File(w + "/ppl.h5", "r") as f:
    assert list(f["candidates"].asstr()[:]) == ["a0", "a1"] and f.attrs["signals"] == "perplexity"
print("experts.h5: ok")
PY

expect_error() {  # expect_error CODE TEXT ARGS...: exit code and message
  local code=$1 text=$2; shift 2
  set +e; "$KMOE" select-experts "$@" > "$WORK/out.txt" 2>&1; local rc=$?; set -e
  [ "$rc" = "$code" ] || { cat "$WORK/out.txt"; fail "exit $rc, not $code, for $*"; }
  grep -qF -- "$text" "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "no '$text' for $*"; }
}
expect_error 1 "missing dataset /ppl_sum" --scores "$WORK/noppl.h5" --output "$WORK/x.h5"
expect_error 1 "only 5 adapters are candidates" --scores "$WORK/scores.h5" --m 6 --n 2 --output "$WORK/x.h5"
expect_error 2 "--n must be in 1..M" --scores "$WORK/scores.h5" --m 3 --n 4 --output "$WORK/x.h5"
expect_error 2 "--signals must be" --scores "$WORK/scores.h5" --signals loss --output "$WORK/x.h5"
expect_error 1 "different delta shapes" --scores "$WORK/wide.h5" --m 4 --n 2 --output "$WORK/x.h5"
grep -q "'wide'" "$WORK/out.txt" || fail "shape error does not name the adapter"
[ ! -e "$WORK/x.h5" ] || fail "a failed run left experts.h5"
echo "select-experts: ok"
