# References for llama_parity_test.cpp: small random LLaMA-family models saved with
# transformers' save_pretrained, and their fp32 eager logits on right- and left-padded
# batches and greedy generations. Also a safetensors file written by the python package,
# for the reader's interop check. Everything goes to $KMOE_PARITY_DIR/llama/.
#
# Weights are drawn wider than HF's default init (std 0.02 gives near-uniform logits, where
# greedy argmax would hinge on rounding) and norms/biases are randomised so they matter.
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "llama")
GEN_NEW_TOKENS = 20


def model_make(kind):
    common = dict(vocab_size=300, hidden_size=64, max_position_embeddings=256, rms_norm_eps=1e-5,
                  initializer_range=0.15, attn_implementation="eager", bos_token_id=1, eos_token_id=2)
    if kind == "gqa":
        cfg = LlamaConfig(intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                          num_key_value_heads=2, tie_word_embeddings=False, **common)
        model = LlamaForCausalLM(cfg)
    elif kind == "llama3":
        cfg = LlamaConfig(intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=1, head_dim=24, rope_theta=500000.0, tie_word_embeddings=True,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                          **common)
        model = LlamaForCausalLM(cfg)
    elif kind == "qwen2":
        cfg = Qwen2Config(intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, tie_word_embeddings=False, rope_theta=1000000.0, **common)
        model = Qwen2ForCausalLM(cfg)
    else:
        raise ValueError(kind)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn_like(p))
    model.eval()
    return model


def positions_from_mask(mask):
    # as HF generate(): the number of real tokens before each position
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def padded_batch(rows, left, pad_id=0):
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, r in enumerate(rows):
        if left:
            ids[i, longest - len(r):] = torch.tensor(r)
            mask[i, longest - len(r):] = 1
        else:
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
    return ids, mask


def reference_write(kind, seed):
    torch.manual_seed(seed)
    model = model_make(kind)
    model_dir = os.path.join(OUT, kind)
    model.save_pretrained(model_dir, safe_serialization=True)
    if kind == "gqa":
        model.save_pretrained(os.path.join(OUT, "gqa_sharded"), safe_serialization=True, max_shard_size="40KB")
        assert os.path.exists(os.path.join(OUT, "gqa_sharded", "model.safetensors.index.json"))

    g = torch.Generator().manual_seed(seed + 1)
    rows = [torch.randint(3, 300, (n,), generator=g).tolist() for n in (13, 7, 3, 10)]
    ref = {}
    with torch.no_grad():
        full = torch.tensor([rows[0]])
        ref["full_ids"] = full
        ref["full_logits"] = model(full).logits.float()
        for side in ("right", "left"):
            ids, mask = padded_batch(rows, left=side == "left")
            logits = model(ids, attention_mask=mask, position_ids=positions_from_mask(mask)).logits.float()
            ref[side + "_ids"], ref[side + "_mask"], ref[side + "_logits"] = ids, mask, logits

        # Greedy decoding by full re-forward each step (no KV cache), so kmoe's cached decoding is
        # checked against an independent path. (transformers' generate() cannot run here: it imports
        # torch.distributed.fsdp, which Debian's torch 1.13 cannot import under python 3.11.)
        for i, r in enumerate(rows[:3]):
            seq = list(r)
            margin = float("inf")
            for _ in range(GEN_NEW_TOKENS):
                last = model(torch.tensor([seq])).logits[0, -1]
                top = last.topk(2).values
                margin = min(margin, float(top[0] - top[1]))
                seq.append(int(last.argmax()))
            # greedy parity needs a clear winner at every step
            if margin < 1e-3:
                sys.exit(f"{kind}: greedy margin {margin} too small for a parity test; change the seed")
            ref[f"gen_prompt_{i}"] = torch.tensor(r)
            ref[f"gen_tokens_{i}"] = torch.tensor(seq[len(r):])
            print(f"{kind}: prompt {i} greedy margin {margin:.4f}")
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(model_dir, "reference.safetensors"))
    print(f"{kind}: wrote {model_dir}")


def interop_write():
    # Values the C++ test recomputes: arange-based, exact in every dtype.
    d = os.path.join(OUT, "interop")
    os.makedirs(d, exist_ok=True)
    a = torch.arange(12, dtype=torch.float64).reshape(3, 4) * 0.5 - 2
    tensors = {
        "f64": a, "f32": a.float(), "f16": a.half(), "bf16": a.bfloat16(),
        "i64": torch.arange(-6, 6, dtype=torch.int64), "i32": torch.arange(-6, 6, dtype=torch.int32),
        "i16": torch.arange(-6, 6, dtype=torch.int16), "i8": torch.arange(-6, 6, dtype=torch.int8),
        "u8": torch.arange(0, 12, dtype=torch.uint8), "bool": torch.arange(12) % 3 == 0,
    }
    save_file(tensors, os.path.join(d, "python_written.safetensors"), metadata={"format": "pt", "who": "python"})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    interop_write()
    reference_write("gqa", 11)
    reference_write("llama3", 12)
    reference_write("qwen2", 13)
