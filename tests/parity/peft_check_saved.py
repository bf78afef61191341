# Loads the base model BASE_DIR with an adapter directory kmoe wrote (ADAPTER_DIR) through
# PEFT and writes PEFT's logits for the inputs in INPUTS (a safetensors file with input_ids
# and attention_mask) to OUT (safetensors, "logits"), for peft_parity_test.cpp to compare.
# Usage: peft_check_saved.py BASE_DIR ADAPTER_DIR INPUTS OUT
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import LlamaForCausalLM


def main(base_dir, adapter_dir, inputs_path, out_path):
    inputs = load_file(inputs_path)
    base = LlamaForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    save_file({"logits": logits.contiguous()}, out_path)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__ or "usage: peft_check_saved.py BASE_DIR ADAPTER_DIR INPUTS OUT")
    main(*sys.argv[1:])
