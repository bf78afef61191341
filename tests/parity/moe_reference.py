# Mixture-of-LoRA-experts references for moe_parity_test.cpp: a small random LLaMA, three
# PEFT adapters on q_proj + v_proj (same r, different alpha, one with rslora, random B) and
# random routers; the logits of the base with every q_proj/v_proj output augmented, through
# forward hooks, by the mixture written out token by token from METHOD.md §1.3 (softmax over
# the router logits, the top-k experts, gates renormalised over them, each expert's own
# scale). Independent of kmoe's stacked computation on purpose.
# Writes $KMOE_PARITY_DIR/moe/{base/, adapters/NAME/, refs.safetensors}.
import json
import math
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "moe")
ADAPTERS = {
    "e0": dict(r=4, lora_alpha=8, use_rslora=False),
    "e1": dict(r=4, lora_alpha=3, use_rslora=True),
    "e2": dict(r=4, lora_alpha=16, use_rslora=False),
}
MODULES = ["q_proj", "v_proj"]  # kmoe's key order within a layer


def load_expert(path):
    config = json.load(open(os.path.join(path, "adapter_config.json")))
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    weights = load_file(os.path.join(path, "adapter_model.safetensors"))
    return scale, weights


def mixture(x, router, experts, layer, module, top_k):
    """x [B, T, in] -> sum over the kept experts of gate * scale * B (A x), token by token."""
    out = None
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            xt = x[b, t]
            p = torch.softmax(router @ xt, dim=0)
            kept = sorted(range(len(experts)), key=lambda e: -p[e].item())[:top_k]
            total = sum(p[e].item() for e in kept)
            y = 0
            for e in kept:
                scale, w = experts[e]
                prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
                a, bm = w[prefix + ".lora_A.weight"], w[prefix + ".lora_B.weight"]
                y = y + (p[e].item() / total) * scale * (bm @ (a @ xt))
            if out is None:
                out = torch.zeros(x.shape[0], x.shape[1], y.shape[0])
            out[b, t] = y
    return out


def main():
    torch.manual_seed(4321)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    base_dir = os.path.join(OUT, "base")
    config = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.05, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(base_dir, safe_serialization=True)

    def base_model():
        return LlamaForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32).eval()

    experts = []
    for i, (name, options) in enumerate(ADAPTERS.items()):
        model = get_peft_model(base_model(), LoraConfig(task_type="CAUSAL_LM", target_modules=MODULES, **options))
        gen = torch.Generator().manual_seed(100 + i)
        with torch.no_grad():
            for param_name, p in model.named_parameters():
                if "lora_B" in param_name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        path = os.path.join(OUT, "adapters", name)
        model.save_pretrained(path)
        experts.append(load_expert(path))

    input_ids = torch.randint(3, config.vocab_size, (2, 9), dtype=torch.int64)
    attention_mask = torch.ones_like(input_ids)
    refs = {"input_ids": input_ids, "attention_mask": attention_mask}
    routers = {}
    for layer in range(config.num_hidden_layers):
        for module in MODULES:
            key = f"layers.{layer}.{module}"
            routers[key] = torch.randn(len(ADAPTERS), config.hidden_size) * 0.5
            refs["router." + key] = routers[key]

    model = base_model()
    with torch.no_grad():
        refs["base_logits"] = model(input_ids=input_ids, attention_mask=attention_mask).logits
        for top_k in (1, 2, 3):
            hooks = []
            for layer in range(config.num_hidden_layers):
                attn = model.model.layers[layer].self_attn
                for module in MODULES:
                    key = f"layers.{layer}.{module}"

                    def hook(mod, inputs, output, key=key, layer=layer, module=module):
                        return output + mixture(inputs[0], routers[key], experts, layer, module, top_k)

                    hooks.append(getattr(attn, module).register_forward_hook(hook))
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            for h in hooks:
                h.remove()
            print(f"top_k {top_k}: |moe - base| max {(logits - refs['base_logits']).abs().max():.4f}")
            refs[f"logits_top{top_k}"] = logits
    save_file({k: v.contiguous() for k, v in refs.items()}, os.path.join(OUT, "refs.safetensors"))


if __name__ == "__main__":
    main()
