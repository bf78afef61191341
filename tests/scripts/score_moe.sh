# `kmoe score --moe`: a mixture of LoRA experts (moe.h5, written here with h5py in the
# documented layout) is one more row of scores.h5, named after the file stem. A mixture of
# one expert with top_k 1 scores the NLL of that adapter; a mixture missing a tensor stops
# the stage naming the tensor.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
D="$KMOE_PARITY_DIR/scoring"

# make_moe OUT TOP_K SKIP ADAPTER:NAME:SIGN...: experts from PEFT folders (B times SIGN).
make_moe() {
  "$PYTHON" - "$D" "$@" <<'PY'
import json, struct, sys
import h5py, numpy as np
D, out, top_k, skip, specs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in head.items() if k != "__metadata__"}
layers = json.load(open(f"{D}/model/config.json"))["num_hidden_layers"]
experts = []
for spec in specs:
    folder, name, sign = spec.split(":")
    config = json.load(open(f"{D}/adapters/{folder}/adapter_config.json"))
    experts.append((name, config, safetensors(f"{D}/adapters/{folder}/adapter_model.safetensors"), float(sign)))
config = experts[0][1]
modules = [m for m in ["q_proj", "k_proj", "v_proj", "o_proj"] if m in config["target_modules"]]
rng = np.random.default_rng(0)
with h5py.File(out, "w") as f:
    g = f.create_group("moe")
    keys = [f"layers.{l}.{m}" for l in range(layers) for m in modules]
    g["keys"] = np.array([k.encode() for k in keys])
    g["expert_names"] = np.array([e[0].encode() for e in experts])
    for k in keys:
        l, m = k.split(".")[1:]
        p = f"base_model.model.model.layers.{l}.self_attn.{m}"
        a = np.stack([e[2][p + ".lora_A.weight"] for e in experts])
        b = np.stack([e[2][p + ".lora_B.weight"] * e[3] for e in experts])
        for name, t in [("router", rng.standard_normal((len(experts), a.shape[2])).astype(np.float32)),
                        ("lora_A", a), ("lora_B", b)]:
            if f"{k}/{name}" != skip:
                g[f"{k}/{name}"] = t
    g.attrs["top_k"] = np.int64(top_k)
    g.attrs["aux_loss_coef"] = 0.0
    g.attrs["train_experts"] = np.int64(1)
    g.attrs["r"] = np.int64(config["r"])
    g.attrs["expert_alpha"] = json.dumps([e[1]["lora_alpha"] for e in experts])
    g.attrs["expert_use_rslora"] = json.dumps([bool(e[1].get("use_rslora")) for e in experts])
    g.attrs["target_modules"] = json.dumps(modules)
    g.attrs["layers"] = json.dumps(list(range(layers)))
PY
}
make_moe "$WORK/one.h5" 1 "" a_qv:a_qv:1
make_moe "$WORK/mix.h5" 2 "" a_qv:plus:1 a_qv:minus:-0.5
make_moe "$WORK/broken.h5" 1 "layers.1.v_proj/lora_B" a_qv:a_qv:1

args=(score --model "$D/model" --kshot "$D/kshot.jsonl" --answer-format exact --max-new-tokens 3 --chunk-size 4
      --threads 1)
mpi -np 2 "$KMOE" "${args[@]}" --bank "$D/adapters" --moe "$WORK/one.h5" --moe "$WORK/mix.h5" \
  --output "$WORK/s.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "score with --moe"; }
mpi -np 1 "$KMOE" "${args[@]}" --moe "$WORK/one.h5" --output "$WORK/only.h5" 2> "$WORK/err" ||
  { cat "$WORK/err"; fail "score with --moe and no bank"; }
"$PYTHON" - "$WORK/s.h5" "$WORK/only.h5" <<'PY'
import sys, h5py, numpy as np
f, g = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = [s.decode() for s in f["adapters"][()]]
assert names == ["base", "a_qv", "b_all", "c_mlp", "one", "mix"], names
nll = f["nll"][()]
assert np.all(np.isfinite(nll)) and list(f["skipped"][()]) == [0] * 6
assert np.allclose(nll[4], nll[1], rtol=1e-5, atol=1e-5), (nll[4], nll[1])
assert not np.allclose(nll[4], nll[0], rtol=1e-3), "the MoE row equals the base"
assert not np.allclose(nll[5], nll[1], rtol=1e-3), "the two-expert mixture equals its first expert"
assert [s.decode() for s in g["adapters"][()]] == ["base", "one"]
assert np.allclose(g["nll"][()], nll[[0, 4]], rtol=1e-6, atol=1e-6)
PY

set +e
mpi -np 2 "$KMOE" "${args[@]}" --moe "$WORK/broken.h5" --output "$WORK/b.h5" 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "a mixture missing a tensor was accepted"
grep -q "missing tensor /moe/layers.1.v_proj/lora_B" "$WORK/err" || fail "error does not name the tensor: $(cat "$WORK/err")"
grep -q "MoE 'broken'" "$WORK/err" || fail "error does not name the mixture: $(cat "$WORK/err")"
[ ! -e "$WORK/b.h5" ] || fail "artifact written despite the error"
echo "ok"
