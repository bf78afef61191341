# A mixture of LoRA experts (moe.h5) in the layout moe_file.h documents, written with h5py
# from PEFT folders of the scoring fixture, for the script tests.
# usage: make_moe.py FIXTURE_DIR OUT TOP_K SKIP ADAPTER:NAME:SIGN...
#   experts from FIXTURE_DIR/adapters/ADAPTER with B times SIGN; attention modules only;
#   SKIP names one dataset to leave out ("" for none), to make a broken file.
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
