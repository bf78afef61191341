# PEFT LoRA references for peft_parity_test.cpp: a small random LLaMA saved with
# save_pretrained, three LoRA adapters saved by PEFT (B initialised randomly, since PEFT's
# B = 0 would make every adapter a no-op), and the logits PEFT computes for fixed inputs with
# each adapter enabled, disabled (base) and merged (merge_and_unload).
# Writes $KMOE_PARITY_DIR/peft/{base/, adapters/NAME/, refs.safetensors}.
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "peft")

ADAPTERS = {
    # (a) q_proj + v_proj, rslora off
    "qv": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_rslora=False, lora_dropout=0.0),
    # (b) every linear layer, rslora on; dropout is a training-time option and must not change eval logits
    "all_linear": dict(r=4, lora_alpha=8, target_modules="all-linear", use_rslora=True, lora_dropout=0.1),
    # (c) another r/alpha, some modules, one layer only
    "kod_layer1": dict(r=2, lora_alpha=5, target_modules=["k_proj", "o_proj", "down_proj"], use_rslora=False,
                       lora_dropout=0.0, layers_to_transform=[1]),
}


def base_model(base_dir):
    return LlamaForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32).eval()


def main():
    torch.manual_seed(1234)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    base_dir = os.path.join(OUT, "base")
    config = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.1, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(base_dir, safe_serialization=True)

    input_ids = torch.randint(3, config.vocab_size, (2, 9), dtype=torch.int64)
    attention_mask = torch.ones_like(input_ids)
    refs = {"input_ids": input_ids, "attention_mask": attention_mask}
    with torch.no_grad():
        refs["base_logits"] = base_model(base_dir)(input_ids=input_ids, attention_mask=attention_mask).logits

    for name, options in ADAPTERS.items():
        model = get_peft_model(base_model(base_dir), LoraConfig(task_type="CAUSAL_LM", **options))
        gen = torch.Generator().manual_seed(len(name))
        with torch.no_grad():
            for param_name, p in model.named_parameters():
                if "lora_B" in param_name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        model.eval()
        model.save_pretrained(os.path.join(OUT, "adapters", name))
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            with model.disable_adapter():
                disabled = model(input_ids=input_ids, attention_mask=attention_mask).logits
            merged = model.merge_and_unload()(input_ids=input_ids, attention_mask=attention_mask).logits
        assert torch.equal(disabled, refs["base_logits"]), name
        print(f"{name}: |adapter - base| max {(logits - disabled).abs().max():.4f}, "
              f"|merged - unmerged| max {(merged - logits).abs().max():.2e}")
        refs[f"logits_{name}"] = logits
        refs[f"merged_logits_{name}"] = merged
    save_file({k: v.contiguous() for k, v in refs.items()}, os.path.join(OUT, "refs.safetensors"))


if __name__ == "__main__":
    main()
